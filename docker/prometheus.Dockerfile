# rvs-prometheus: Debian's Prometheus on control/prometheus/rvs.yml (its relabel rule) and
# alerts.yml, scraping the compose lab's rvsd (docker/compose.yaml, profile prometheus).
# Built by `docker/build.sh --prometheus`, whose context holds control/prometheus/.
ARG BASE=debian:bookworm-slim
FROM ${BASE}
# libjs-moment-timezone's data/ (212 MB of zone files) is not what the UI loads (the bundled
# moment-timezone-with-data.min.js): not unpacked.
RUN echo 'path-exclude /usr/share/javascript/moment-timezone/data/*' \
      >/etc/dpkg/dpkg.cfg.d/rvs-no-moment-timezone-data \
 && apt-get update \
 && apt-get install -y --no-install-recommends prometheus \
 && rm -rf /var/lib/apt/lists/*
COPY control/prometheus/rvs.yml control/prometheus/alerts.yml /etc/rvs-prometheus/
# rvs.yml as it is, but for its target (the compose service rvsd) and 5 s intervals.
RUN sed -i -e 's/"127\.0\.0\.1:9750"/"rvsd:9750"/' \
      -e 's/^\(  *\)scrape_interval: .*/\1scrape_interval: 5s/' \
      -e 's/^\(  *\)evaluation_interval: .*/\1evaluation_interval: 5s/' /etc/rvs-prometheus/rvs.yml \
 && grep -q '"rvsd:9750"' /etc/rvs-prometheus/rvs.yml \
 && promtool check config /etc/rvs-prometheus/rvs.yml
EXPOSE 9090
ENTRYPOINT ["prometheus", "--config.file=/etc/rvs-prometheus/rvs.yml", \
  "--storage.tsdb.path=/prometheus", "--web.listen-address=0.0.0.0:9090"]
