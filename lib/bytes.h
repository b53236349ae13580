/*
 * Big-endian loads and stores for fixed byte layouts (the envelope's inner
 * header, peers.seq records). Byte by byte, so neither the host's byte order
 * nor the pointer's alignment matters. Header-only: each is a few shifts.
 */
#ifndef FL_BYTES_H
#define FL_BYTES_H

#include <stdint.h>

static inline void fl_store_be32(uint8_t *p, uint32_t v)
{
	for (int i = 3; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static inline void fl_store_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static inline uint32_t fl_load_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t fl_load_be64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

#endif
