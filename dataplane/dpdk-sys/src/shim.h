/* Everything dpdk-sys binds: the DPDK headers it uses and the rvs_ shim over their
 * static inline functions. Compiled with `pkg-config --cflags libdpdk` (which carries
 * `-include rte_config.h -march=corei7`), for bindgen and cc alike. */
#ifndef RVS_DPDK_SHIM_H
#define RVS_DPDK_SHIM_H

#include <stdint.h>

#include <rte_common.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_launch.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>
#include <rte_thash.h>

uint16_t rvs_rx_burst(uint16_t port_id, uint16_t queue_id, struct rte_mbuf **rx_pkts,
		      uint16_t nb_pkts);
uint16_t rvs_tx_burst(uint16_t port_id, uint16_t queue_id, struct rte_mbuf **tx_pkts,
		      uint16_t nb_pkts);

struct rte_mbuf *rvs_pktmbuf_alloc(struct rte_mempool *mp);
void rvs_pktmbuf_free(struct rte_mbuf *m);
int rvs_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs, unsigned int count);
void rvs_pktmbuf_free_bulk(struct rte_mbuf **mbufs, unsigned int count);

void *rvs_pktmbuf_mtod(struct rte_mbuf *m);
uint16_t rvs_pktmbuf_data_len(const struct rte_mbuf *m);
uint32_t rvs_pktmbuf_pkt_len(const struct rte_mbuf *m);
char *rvs_pktmbuf_prepend(struct rte_mbuf *m, uint16_t len);
char *rvs_pktmbuf_adj(struct rte_mbuf *m, uint16_t len);
int rvs_pktmbuf_trim(struct rte_mbuf *m, uint16_t len);
char *rvs_pktmbuf_append(struct rte_mbuf *m, uint16_t len);
uint16_t rvs_pktmbuf_headroom(const struct rte_mbuf *m);
uint16_t rvs_pktmbuf_tailroom(const struct rte_mbuf *m);

unsigned int rvs_lcore_id(void);
int rvs_errno(void);

unsigned int rvs_ring_enqueue_burst(struct rte_ring *r, void *const *obj_table, unsigned int n,
				    unsigned int *free_space);
unsigned int rvs_ring_dequeue_burst(struct rte_ring *r, void **obj_table, unsigned int n,
				    unsigned int *available);

uint64_t rvs_rdtsc(void);

/* Request tx checksum offloads: ol_flags |= flags, and the header lengths they need. */
void rvs_mbuf_tx_offload(struct rte_mbuf *m, uint64_t flags, uint16_t l2_len, uint16_t l3_len);
/* The mbuf's offload flags and header lengths, for tests. */
uint64_t rvs_mbuf_ol_flags(const struct rte_mbuf *m);
uint32_t rvs_mbuf_l2_l3_len(const struct rte_mbuf *m);

/* DPDK's software Toeplitz hash over `len` host-order 32-bit words (key >= 4 * (len + 1) bytes). */
uint32_t rvs_softrss(const uint32_t *tuple, uint32_t len, const uint8_t *key);

#endif /* RVS_DPDK_SHIM_H */
