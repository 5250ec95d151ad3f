// Elementwise math in forms the compiler vectorises, shared by the LTC (ltc.cpp) and wired CfC
// (wired_cfc.cpp) kernels. float uses a polynomial exp (about 1 ulp); double uses std::exp /
// std::tanh (those kernels' float64 path is for checking, not speed).
//
// The extension's library name hashes the headers a source includes (see csrc/__init__.py), so a
// change here rebuilds the kernels that use it.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

namespace ncp_math {

// exp for float in a form the compiler vectorises (Cephes expf: range reduction by ln 2 and a
// degree-5 polynomial, about 1 ulp). Arguments are clamped to [-87.3, 88.3]: exp never overflows,
// and sigmoid(z) for z < -87 is ~1e-38 instead of 0. NaN propagates.
inline float exp_vectorisable(float x) {
  x = std::min(std::max(x, -87.3f), 88.3f);
  const float round_magic = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const float n = (x * 1.44269504088896341f + round_magic) - round_magic;
  const float r = (x - n * 0.693359375f) + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;  // 2^n
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return p * scale;
}

template <typename T>
inline T sigmoid(T z) {
  return T(1) / (T(1) + std::exp(-z));
}

template <>
inline float sigmoid<float>(float z) {
  return 1.0f / (1.0f + exp_vectorisable(-z));
}

template <typename T>
inline T tanh(T z) {
  return std::tanh(z);
}

// tanh(z) = 1 - 2 / (1 + exp(2 z)): absolute error about 1e-7 (so a larger relative error for
// |z| << 1, where the result is small), exactly +-1 beyond |z| ~ 9, NaN propagates.
template <>
inline float tanh<float>(float z) {
  return 1.0f - 2.0f / (1.0f + exp_vectorisable(2.0f * z));
}

}  // namespace ncp_math
