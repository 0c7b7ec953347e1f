#include "textflag.h"
#include "transpose_amd64.h"

// func gemm16x6F32AVX2(w *float32, x *float32, k int, out *[6]*float32, acc int)
// The prefill micro-kernel: for t < 6 and r < 16,
// out[t][r] (+)= Σ_i w[16i+r]·x[6i+t] over k steps i, where w is a panel of
// 16 weight rows stored k-major (16 values per step) and x the six tokens'
// activations packed the same way (6 values per step), so the broadcasts
// read one stream. With acc == 0 the results overwrite out, else they are
// added to it.
TEXT ·gemm16x6F32AVX2(SB), NOSPLIT, $0-40
	MOVQ w+0(FP), AX
	MOVQ x+8(FP), DX
	MOVQ k+16(FP), BX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	TESTQ BX, BX
	JLE  g16done
g16loop:
	VMOVUPS (AX), Y12
	VMOVUPS 32(AX), Y13
	VBROADCASTSS 0(DX), Y14
	VFMADD231PS Y12, Y14, Y0
	VFMADD231PS Y13, Y14, Y1
	VBROADCASTSS 4(DX), Y15
	VFMADD231PS Y12, Y15, Y2
	VFMADD231PS Y13, Y15, Y3
	VBROADCASTSS 8(DX), Y14
	VFMADD231PS Y12, Y14, Y4
	VFMADD231PS Y13, Y14, Y5
	VBROADCASTSS 12(DX), Y15
	VFMADD231PS Y12, Y15, Y6
	VFMADD231PS Y13, Y15, Y7
	VBROADCASTSS 16(DX), Y14
	VFMADD231PS Y12, Y14, Y8
	VFMADD231PS Y13, Y14, Y9
	VBROADCASTSS 20(DX), Y15
	VFMADD231PS Y12, Y15, Y10
	VFMADD231PS Y13, Y15, Y11
	ADDQ $64, AX
	ADDQ $24, DX
	DECQ BX
	JNZ  g16loop
g16done:
	MOVQ out+24(FP), R11
	MOVQ acc+32(FP), BX
	TESTQ BX, BX
	JZ   g16store
	MOVQ 0(R11), DX
	VADDPS (DX), Y0, Y0
	VADDPS 32(DX), Y1, Y1
	MOVQ 8(R11), DX
	VADDPS (DX), Y2, Y2
	VADDPS 32(DX), Y3, Y3
	MOVQ 16(R11), DX
	VADDPS (DX), Y4, Y4
	VADDPS 32(DX), Y5, Y5
	MOVQ 24(R11), DX
	VADDPS (DX), Y6, Y6
	VADDPS 32(DX), Y7, Y7
	MOVQ 32(R11), DX
	VADDPS (DX), Y8, Y8
	VADDPS 32(DX), Y9, Y9
	MOVQ 40(R11), DX
	VADDPS (DX), Y10, Y10
	VADDPS 32(DX), Y11, Y11
g16store:
	MOVQ 0(R11), DX
	VMOVUPS Y0, (DX)
	VMOVUPS Y1, 32(DX)
	MOVQ 8(R11), DX
	VMOVUPS Y2, (DX)
	VMOVUPS Y3, 32(DX)
	MOVQ 16(R11), DX
	VMOVUPS Y4, (DX)
	VMOVUPS Y5, 32(DX)
	MOVQ 24(R11), DX
	VMOVUPS Y6, (DX)
	VMOVUPS Y7, 32(DX)
	MOVQ 32(R11), DX
	VMOVUPS Y8, (DX)
	VMOVUPS Y9, 32(DX)
	MOVQ 40(R11), DX
	VMOVUPS Y10, (DX)
	VMOVUPS Y11, 32(DX)
	VZEROUPPER
	RET

// T16STEP transposes 8 values of each of the 16 rows (src pointers at
// R11, offset CX) into 512 bytes at DI; LOAD reads 8 of a row's values
// as float32 (VMOVUPS for float32 rows, VCVTPH2PS for half floats).
#define T16STEP(LOAD) \
	MOVQ 0(R11), R8 \
	LOAD (R8)(CX*1), Y0 \
	MOVQ 8(R11), R8 \
	LOAD (R8)(CX*1), Y1 \
	MOVQ 16(R11), R8 \
	LOAD (R8)(CX*1), Y2 \
	MOVQ 24(R11), R8 \
	LOAD (R8)(CX*1), Y3 \
	MOVQ 32(R11), R8 \
	LOAD (R8)(CX*1), Y4 \
	MOVQ 40(R11), R8 \
	LOAD (R8)(CX*1), Y5 \
	MOVQ 48(R11), R8 \
	LOAD (R8)(CX*1), Y6 \
	MOVQ 56(R11), R8 \
	LOAD (R8)(CX*1), Y7 \
	TRANSPOSE8 \
	VMOVUPS Y8, 0(DI) \
	VMOVUPS Y9, 64(DI) \
	VMOVUPS Y10, 128(DI) \
	VMOVUPS Y11, 192(DI) \
	VMOVUPS Y12, 256(DI) \
	VMOVUPS Y13, 320(DI) \
	VMOVUPS Y14, 384(DI) \
	VMOVUPS Y15, 448(DI) \
	MOVQ 64(R11), R8 \
	LOAD (R8)(CX*1), Y0 \
	MOVQ 72(R11), R8 \
	LOAD (R8)(CX*1), Y1 \
	MOVQ 80(R11), R8 \
	LOAD (R8)(CX*1), Y2 \
	MOVQ 88(R11), R8 \
	LOAD (R8)(CX*1), Y3 \
	MOVQ 96(R11), R8 \
	LOAD (R8)(CX*1), Y4 \
	MOVQ 104(R11), R8 \
	LOAD (R8)(CX*1), Y5 \
	MOVQ 112(R11), R8 \
	LOAD (R8)(CX*1), Y6 \
	MOVQ 120(R11), R8 \
	LOAD (R8)(CX*1), Y7 \
	TRANSPOSE8 \
	VMOVUPS Y8, 32(DI) \
	VMOVUPS Y9, 96(DI) \
	VMOVUPS Y10, 160(DI) \
	VMOVUPS Y11, 224(DI) \
	VMOVUPS Y12, 288(DI) \
	VMOVUPS Y13, 352(DI) \
	VMOVUPS Y14, 416(DI) \
	VMOVUPS Y15, 480(DI)

// func transpose16AVX2(src *[16]*float32, dst *float32, n int)
// dst[16i+r] = src[r][i] for i < n (a multiple of 8), r < 16.
TEXT ·transpose16AVX2(SB), NOSPLIT, $0-24
	MOVQ src+0(FP), R11
	MOVQ dst+8(FP), DI
	MOVQ n+16(FP), BX
	SHLQ $2, BX
	XORQ CX, CX
	TESTQ BX, BX
	JLE  t16done
t16loop:
	T16STEP(VMOVUPS)
	ADDQ $512, DI
	ADDQ $32, CX
	CMPQ CX, BX
	JLT  t16loop
t16done:
	VZEROUPPER
	RET

// func transpose16F16AVX2(src *[16]*byte, dst *float32, n int)
// dst[16i+r] = src[r][i] for i < n (a multiple of 8), r < 16, where the
// rows hold half floats: conversion and transposition in one pass.
TEXT ·transpose16F16AVX2(SB), NOSPLIT, $0-24
	MOVQ src+0(FP), R11
	MOVQ dst+8(FP), DI
	MOVQ n+16(FP), BX
	SHLQ $1, BX
	XORQ CX, CX
	TESTQ BX, BX
	JLE  ht16done
ht16loop:
	T16STEP(VCVTPH2PS)
	ADDQ $512, DI
	ADDQ $16, CX
	CMPQ CX, BX
	JLT  ht16loop
ht16done:
	VZEROUPPER
	RET
