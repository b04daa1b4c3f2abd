#ifndef MVAULT_HALF_H
#define MVAULT_HALF_H

#include <stddef.h>
#include <stdint.h>

/// IEEE half-precision (binary16) to single precision, `count` values, exactly.
void mvault_half_to_float(const uint16_t *in, float *out, size_t count);

/// Single to half precision, `count` values, rounding to nearest even (as Swift's Float16(x)
/// and PyTorch's .half() do).
void mvault_float_to_half(const float *in, uint16_t *out, size_t count);

/// Moves a row of halves in place by scale × s, where s ≠ 0: each value w (given as floats in
/// `w`) becomes the half nearest to w + scale·s. Halves that are not finite numbers, and those
/// where s = 0, keep their bits. Writes to `unmoved` the columns where s ≠ 0 but the nearest
/// half is w itself (the move is under half a step) and returns how many there are.
size_t mvault_half_move(uint16_t *row, const float *w, const float *s, float scale, uint32_t *unmoved, size_t count);

#endif
