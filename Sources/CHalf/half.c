// Bulk binary16 <-> binary32 work for marking F16 weights. With F16C (and AVX2 for the move)
// eight values go through per instruction; without them (older x86, other architectures) the
// compiler's _Float16 conversions give the same results, one value at a time. Both paths round
// the same way (multiply, then add, then round to nearest even), so every machine marks a file
// identically.
#include "half.h"

#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>

static int has_f16c(void) {
    static int known = -1;
    if (known < 0) known = __builtin_cpu_supports("f16c") && __builtin_cpu_supports("avx");
    return known;
}

static int has_avx2(void) {
    static int known = -1;
    if (known < 0) known = has_f16c() && __builtin_cpu_supports("avx2");
    return known;
}

__attribute__((target("avx,f16c"))) static size_t half_to_float_f16c(const uint16_t *in, float *out, size_t count) {
    size_t i = 0;
    for (; i + 8 <= count; i += 8) {
        __m128i h = _mm_loadu_si128((const __m128i *)(in + i));
        _mm256_storeu_ps(out + i, _mm256_cvtph_ps(h));
    }
    return i;
}

__attribute__((target("avx,f16c"))) static size_t float_to_half_f16c(const float *in, uint16_t *out, size_t count) {
    size_t i = 0;
    for (; i + 8 <= count; i += 8) {
        __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(in + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm_storeu_si128((__m128i *)(out + i), h);
    }
    return i;
}

// Whole groups of eight; returns how many columns it did and adds the unmoved ones to *found.
__attribute__((target("avx2,f16c"))) static size_t half_move_avx2(
    uint16_t *row, const float *w, const float *s, float scale, uint32_t *unmoved, size_t count, size_t *found) {
    size_t i = 0;
    const __m256 k = _mm256_set1_ps(scale), zero = _mm256_setzero_ps();
    const __m256 magnitude = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
    const __m256 infinity = _mm256_set1_ps(__builtin_inff());
    for (; i + 8 <= count; i += 8) {
        __m256 wv = _mm256_loadu_ps(w + i), sv = _mm256_loadu_ps(s + i);
        __m256 moving = _mm256_cmp_ps(sv, zero, _CMP_NEQ_UQ);
        __m256 finite = _mm256_cmp_ps(_mm256_and_ps(wv, magnitude), infinity, _CMP_LT_OQ);
        __m256 change = _mm256_and_ps(moving, finite);
        __m128i original = _mm_loadu_si128((const __m128i *)(row + i));
        __m128i moved =
            _mm256_cvtps_ph(_mm256_add_ps(wv, _mm256_mul_ps(k, sv)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        __m256 rounded = _mm256_cvtph_ps(moved);
        // The 8 × 32-bit mask packed to 8 × 16 bits picks moved or original halves.
        __m256i change32 = _mm256_castps_si256(change);
        __m128i change16 = _mm_packs_epi32(_mm256_castsi256_si128(change32), _mm256_extracti128_si256(change32, 1));
        _mm_storeu_si128((__m128i *)(row + i), _mm_blendv_epi8(original, moved, change16));
        int stuck = _mm256_movemask_ps(_mm256_and_ps(change, _mm256_cmp_ps(rounded, wv, _CMP_EQ_OQ)));
        while (stuck) {
            unmoved[(*found)++] = (uint32_t)(i + (size_t)__builtin_ctz(stuck));
            stuck &= stuck - 1;
        }
    }
    return i;
}
#else
static int has_f16c(void) { return 0; }
static int has_avx2(void) { return 0; }
static size_t half_to_float_f16c(const uint16_t *in, float *out, size_t count) { return 0; }
static size_t float_to_half_f16c(const float *in, uint16_t *out, size_t count) { return 0; }
static size_t half_move_avx2(
    uint16_t *row, const float *w, const float *s, float scale, uint32_t *unmoved, size_t count, size_t *found) {
    return 0;
}
#endif

void mvault_half_to_float(const uint16_t *in, float *out, size_t count) {
    size_t i = has_f16c() ? half_to_float_f16c(in, out, count) : 0;
    for (; i < count; i++) {
        _Float16 h;
        memcpy(&h, in + i, 2);
        out[i] = (float)h;
    }
}

void mvault_float_to_half(const float *in, uint16_t *out, size_t count) {
    size_t i = has_f16c() ? float_to_half_f16c(in, out, count) : 0;
    for (; i < count; i++) {
        _Float16 h = (_Float16)in[i];
        memcpy(out + i, &h, 2);
    }
}

size_t mvault_half_move(uint16_t *row, const float *w, const float *s, float scale, uint32_t *unmoved, size_t count) {
    size_t found = 0;
    size_t i = has_avx2() ? half_move_avx2(row, w, s, scale, unmoved, count, &found) : 0;
    for (; i < count; i++) {
        float x = w[i];
        if (s[i] == 0 || !(x - x == 0)) continue;  // not moving, or not a finite number
        float step = scale * s[i];
        float target = x + step;
        _Float16 moved = (_Float16)target;
        if ((float)moved == x) {
            unmoved[found++] = (uint32_t)i;
        } else {
            memcpy(row + i, &moved, 2);
        }
    }
    return found;
}
