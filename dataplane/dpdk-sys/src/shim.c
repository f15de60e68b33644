/* Non-inline wrappers for DPDK's static inline functions, which have no symbol to link.
 * Each one only forwards; keep it that way so the Rust side sees DPDK's own semantics. */
#include "shim.h"

/* dpdk-sys defines this one by hand (bindgen cannot evaluate it): keep the two equal. */
_Static_assert(RTE_ETH_RSS_L3_SRC_ONLY == (1ULL << 63), "RTE_ETH_RSS_L3_SRC_ONLY moved");

uint16_t rvs_rx_burst(uint16_t port_id, uint16_t queue_id, struct rte_mbuf **rx_pkts,
		      uint16_t nb_pkts)
{
	return rte_eth_rx_burst(port_id, queue_id, rx_pkts, nb_pkts);
}

uint16_t rvs_tx_burst(uint16_t port_id, uint16_t queue_id, struct rte_mbuf **tx_pkts,
		      uint16_t nb_pkts)
{
	return rte_eth_tx_burst(port_id, queue_id, tx_pkts, nb_pkts);
}

struct rte_mbuf *rvs_pktmbuf_alloc(struct rte_mempool *mp)
{
	return rte_pktmbuf_alloc(mp);
}

void rvs_pktmbuf_free(struct rte_mbuf *m)
{
	rte_pktmbuf_free(m);
}

int rvs_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs, unsigned int count)
{
	return rte_pktmbuf_alloc_bulk(mp, mbufs, count);
}

/* rte_pktmbuf_free_bulk is exported in 22.11; this keeps the rvs_ family complete. */
void rvs_pktmbuf_free_bulk(struct rte_mbuf **mbufs, unsigned int count)
{
	rte_pktmbuf_free_bulk(mbufs, count);
}

void *rvs_pktmbuf_mtod(struct rte_mbuf *m)
{
	return rte_pktmbuf_mtod(m, void *);
}

uint16_t rvs_pktmbuf_data_len(const struct rte_mbuf *m)
{
	return rte_pktmbuf_data_len(m);
}

uint32_t rvs_pktmbuf_pkt_len(const struct rte_mbuf *m)
{
	return rte_pktmbuf_pkt_len(m);
}

char *rvs_pktmbuf_prepend(struct rte_mbuf *m, uint16_t len)
{
	return rte_pktmbuf_prepend(m, len);
}

char *rvs_pktmbuf_adj(struct rte_mbuf *m, uint16_t len)
{
	return rte_pktmbuf_adj(m, len);
}

int rvs_pktmbuf_trim(struct rte_mbuf *m, uint16_t len)
{
	return rte_pktmbuf_trim(m, len);
}

char *rvs_pktmbuf_append(struct rte_mbuf *m, uint16_t len)
{
	return rte_pktmbuf_append(m, len);
}

uint16_t rvs_pktmbuf_headroom(const struct rte_mbuf *m)
{
	return rte_pktmbuf_headroom(m);
}

uint16_t rvs_pktmbuf_tailroom(const struct rte_mbuf *m)
{
	return rte_pktmbuf_tailroom(m);
}

unsigned int rvs_lcore_id(void)
{
	return rte_lcore_id();
}

int rvs_errno(void)
{
	return rte_errno;
}

unsigned int rvs_ring_enqueue_burst(struct rte_ring *r, void *const *obj_table, unsigned int n,
				    unsigned int *free_space)
{
	return rte_ring_enqueue_burst(r, obj_table, n, free_space);
}

unsigned int rvs_ring_dequeue_burst(struct rte_ring *r, void **obj_table, unsigned int n,
				    unsigned int *available)
{
	return rte_ring_dequeue_burst(r, obj_table, n, available);
}

uint64_t rvs_rdtsc(void)
{
	return rte_rdtsc();
}

void rvs_mbuf_tx_offload(struct rte_mbuf *m, uint64_t flags, uint16_t l2_len, uint16_t l3_len)
{
	m->ol_flags |= flags;
	m->l2_len = l2_len;
	m->l3_len = l3_len;
}

uint64_t rvs_mbuf_ol_flags(const struct rte_mbuf *m)
{
	return m->ol_flags;
}

uint32_t rvs_mbuf_l2_l3_len(const struct rte_mbuf *m)
{
	return (uint32_t)m->l2_len << 16 | m->l3_len;
}

uint32_t rvs_softrss(const uint32_t *tuple, uint32_t len, const uint8_t *key)
{
	/* rte_softrss takes a non-const tuple but only reads it. */
	return rte_softrss((uint32_t *)(uintptr_t)tuple, len, key);
}
