#include "textflag.h"

// Horizontal sum of Y0 into X0[0].
#define HSUM \
	VEXTRACTF128 $1, Y0, X1 \
	VADDPS X1, X0, X0 \
	VHADDPS X0, X0, X0 \
	VHADDPS X0, X0, X0

// func dotF32AVX2(a, b *float32, n int) float32
// n must be a multiple of 8.
TEXT ·dotF32AVX2(SB), NOSPLIT, $0-28
	MOVQ a+0(FP), SI
	MOVQ b+8(FP), DI
	MOVQ n+16(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
f32loop32:
	CMPQ CX, $32
	JL   f32loop8
	VMOVUPS (SI), Y4
	VMOVUPS 32(SI), Y5
	VMOVUPS 64(SI), Y6
	VMOVUPS 96(SI), Y7
	VFMADD231PS (DI), Y4, Y0
	VFMADD231PS 32(DI), Y5, Y1
	VFMADD231PS 64(DI), Y6, Y2
	VFMADD231PS 96(DI), Y7, Y3
	ADDQ $128, SI
	ADDQ $128, DI
	SUBQ $32, CX
	JMP  f32loop32
f32loop8:
	CMPQ CX, $8
	JL   f32done
	VMOVUPS (SI), Y4
	VFMADD231PS (DI), Y4, Y0
	ADDQ $32, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  f32loop8
f32done:
	VADDPS Y1, Y0, Y0
	VADDPS Y3, Y2, Y2
	VADDPS Y2, Y0, Y0
	HSUM
	VZEROUPPER
	MOVSS X0, ret+24(FP)
	RET

// func dotF16AVX2(w *byte, x *float32, n int) float32
// n must be a multiple of 8.
TEXT ·dotF16AVX2(SB), NOSPLIT, $0-28
	MOVQ w+0(FP), SI
	MOVQ x+8(FP), DI
	MOVQ n+16(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
f16loop32:
	CMPQ CX, $32
	JL   f16loop8
	PREFETCHT0 1024(SI)
	VCVTPH2PS (SI), Y4
	VCVTPH2PS 16(SI), Y5
	VCVTPH2PS 32(SI), Y6
	VCVTPH2PS 48(SI), Y7
	VFMADD231PS (DI), Y4, Y0
	VFMADD231PS 32(DI), Y5, Y1
	VFMADD231PS 64(DI), Y6, Y2
	VFMADD231PS 96(DI), Y7, Y3
	ADDQ $64, SI
	ADDQ $128, DI
	SUBQ $32, CX
	JMP  f16loop32
f16loop8:
	CMPQ CX, $8
	JL   f16done
	VCVTPH2PS (SI), Y4
	VFMADD231PS (DI), Y4, Y0
	ADDQ $16, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  f16loop8
f16done:
	VADDPS Y1, Y0, Y0
	VADDPS Y3, Y2, Y2
	VADDPS Y2, Y0, Y0
	HSUM
	VZEROUPPER
	MOVSS X0, ret+24(FP)
	RET

// Broadcast the half-float scale at off(SI) into Y9.
#define SCALE(off) \
	MOVWLZX off(SI), AX \
	VMOVD AX, X9 \
	VCVTPH2PS X9, X9 \
	VBROADCASTSS X9, Y9

// func dotQ8_0AVX2(w *byte, x *float32, nb int) float32
// nb blocks of 32 values (34 bytes each).
TEXT ·dotQ8_0AVX2(SB), NOSPLIT, $0-28
	MOVQ w+0(FP), SI
	MOVQ x+8(FP), DI
	MOVQ nb+16(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
q8loop:
	CMPQ CX, $0
	JE   q8done
	SCALE(0)
	VPMOVSXBD 2(SI), Y4
	VPMOVSXBD 10(SI), Y5
	VPMOVSXBD 18(SI), Y6
	VPMOVSXBD 26(SI), Y7
	VCVTDQ2PS Y4, Y4
	VCVTDQ2PS Y5, Y5
	VCVTDQ2PS Y6, Y6
	VCVTDQ2PS Y7, Y7
	VMULPS (DI), Y4, Y4
	VMULPS 64(DI), Y6, Y6
	VFMADD231PS 32(DI), Y5, Y4
	VFMADD231PS 96(DI), Y7, Y6
	VADDPS Y6, Y4, Y4
	VFMADD231PS Y9, Y4, Y0
	ADDQ $34, SI
	ADDQ $128, DI
	DECQ CX
	JMP  q8loop
q8done:
	HSUM
	VZEROUPPER
	MOVSS X0, ret+24(FP)
	RET

// func dotQ4_0AVX2(w *byte, x *float32, nb int) float32
// nb blocks of 32 values (18 bytes each: scale, 16 bytes of nibbles; the
// low nibbles are values 0..15, the high nibbles 16..31, both offset by 8).
TEXT ·dotQ4_0AVX2(SB), NOSPLIT, $0-28
	MOVQ w+0(FP), SI
	MOVQ x+8(FP), DI
	MOVQ nb+16(FP), CX
	VXORPS Y0, Y0, Y0
	MOVL $0x0f0f0f0f, AX
	VMOVD AX, X15
	VPBROADCASTD X15, X15
	MOVL $0x08080808, AX
	VMOVD AX, X14
	VPBROADCASTD X14, X14
q4loop:
	CMPQ CX, $0
	JE   q4done
	SCALE(0)
	VMOVDQU 2(SI), X4
	VPSRLW $4, X4, X5
	VPAND X15, X4, X4
	VPAND X15, X5, X5
	VPSUBB X14, X4, X4
	VPSUBB X14, X5, X5
	VPMOVSXBD X4, Y6
	VPSRLDQ $8, X4, X4
	VPMOVSXBD X4, Y7
	VPMOVSXBD X5, Y10
	VPSRLDQ $8, X5, X5
	VPMOVSXBD X5, Y11
	VCVTDQ2PS Y6, Y6
	VCVTDQ2PS Y7, Y7
	VCVTDQ2PS Y10, Y10
	VCVTDQ2PS Y11, Y11
	VMULPS (DI), Y6, Y6
	VMULPS 64(DI), Y10, Y10
	VFMADD231PS 32(DI), Y7, Y6
	VFMADD231PS 96(DI), Y11, Y10
	VADDPS Y10, Y6, Y6
	VFMADD231PS Y9, Y6, Y0
	ADDQ $18, SI
	ADDQ $128, DI
	DECQ CX
	JMP  q4loop
q4done:
	HSUM
	VZEROUPPER
	MOVSS X0, ret+24(FP)
	RET

// func axpyF32AVX2(a float32, x, y *float32, n int)
// y += a·x; n must be a multiple of 8.
TEXT ·axpyF32AVX2(SB), NOSPLIT, $0-32
	VBROADCASTSS a+0(FP), Y0
	MOVQ x+8(FP), SI
	MOVQ y+16(FP), DI
	MOVQ n+24(FP), CX
axf32loop:
	CMPQ CX, $8
	JL   axf32done
	VMOVUPS (DI), Y2
	VFMADD231PS (SI), Y0, Y2
	VMOVUPS Y2, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  axf32loop
axf32done:
	VZEROUPPER
	RET

// func axpyF16AVX2(a float32, x *byte, y *float32, n int)
// y += a·x with x half floats; n must be a multiple of 8.
TEXT ·axpyF16AVX2(SB), NOSPLIT, $0-32
	VBROADCASTSS a+0(FP), Y0
	MOVQ x+8(FP), SI
	MOVQ y+16(FP), DI
	MOVQ n+24(FP), CX
axf16loop:
	CMPQ CX, $8
	JL   axf16done
	VCVTPH2PS (SI), Y1
	VMOVUPS (DI), Y2
	VFMADD231PS Y1, Y0, Y2
	VMOVUPS Y2, (DI)
	ADDQ $16, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  axf16loop
axf16done:
	VZEROUPPER
	RET

// func f32ToF16AVX2(src *float32, dst *byte, n int)
// n must be a multiple of 8; rounds to nearest even.
TEXT ·f32ToF16AVX2(SB), NOSPLIT, $0-24
	MOVQ src+0(FP), SI
	MOVQ dst+8(FP), DI
	MOVQ n+16(FP), CX
tohloop:
	CMPQ CX, $8
	JL   tohdone
	VMOVUPS (SI), Y1
	VCVTPS2PH $0, Y1, X2
	VMOVDQU X2, (DI)
	ADDQ $32, SI
	ADDQ $16, DI
	SUBQ $8, CX
	JMP  tohloop
tohdone:
	VZEROUPPER
	RET

// func f16ToF32AVX2(src *byte, dst *float32, n int)
// n must be a multiple of 8.
TEXT ·f16ToF32AVX2(SB), NOSPLIT, $0-24
	MOVQ src+0(FP), SI
	MOVQ dst+8(FP), DI
	MOVQ n+16(FP), CX
tofloop:
	CMPQ CX, $8
	JL   tofdone
	VCVTPH2PS (SI), Y1
	VMOVUPS Y1, (DI)
	ADDQ $16, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  tofloop
tofdone:
	VZEROUPPER
	RET

// Per-block scale for the Q8-activation kernels: Y9 = f16(w at off(SI)) *
// xd[0] (R9), broadcast.
#define SCALEQ8(off) \
	MOVWLZX off(SI), AX \
	VMOVD AX, X9 \
	VCVTPH2PS X9, X9 \
	VMULSS (R9), X9, X9 \
	VBROADCASTSS X9, Y9

// Y5 = 8 float partial sums of the int8 products of Y1 (weights, signed)
// and Y2 (activations, signed); Y15 holds int16 ones.
#define I8DOT \
	VPSIGNB Y1, Y1, Y3 \
	VPSIGNB Y1, Y2, Y4 \
	VPMADDUBSW Y4, Y3, Y5 \
	VPMADDWD Y15, Y5, Y5 \
	VCVTDQ2PS Y5, Y5

// func dotQ8_0Q8RowsAVX2(w *byte, xq *int8, xd *float32, nb, rows int, dst *float32)
// dst[r] = the dot product of Q8_0 row r (nb blocks of 34 bytes, rows laid
// end to end) with Q8_0-block activations: per block the int8 products
// (sign trick), scaled by the two half-float scales.
TEXT ·dotQ8_0Q8RowsAVX2(SB), NOSPLIT, $0-48
	MOVQ w+0(FP), SI
	MOVQ rows+32(FP), R11
	MOVQ dst+40(FP), DI
	MOVL $0x00010001, AX
	VMOVD AX, X15
	VPBROADCASTD X15, Y15
rq8row:
	CMPQ R11, $0
	JE   rq8end
	MOVQ xq+8(FP), R8
	MOVQ xd+16(FP), R9
	MOVQ nb+24(FP), CX
	VXORPS Y0, Y0, Y0
rq8q8loop:
	CMPQ CX, $0
	JE   rq8q8done
	PREFETCHT0 1024(SI)
	SCALEQ8(0)
	VMOVDQU 2(SI), Y1
	VMOVDQU (R8), Y2
	I8DOT
	VFMADD231PS Y9, Y5, Y0
	ADDQ $34, SI
	ADDQ $32, R8
	ADDQ $4, R9
	DECQ CX
	JMP  rq8q8loop
rq8q8done:
	HSUM
	MOVSS X0, (DI)
	ADDQ $4, DI
	DECQ R11
	JMP  rq8row
rq8end:
	VZEROUPPER
	RET

// func dotQ4_0Q8RowsAVX2(w *byte, xq *int8, xd, xs *float32, nb, rows int, dst *float32)
// dst[r] = the dot product of Q4_0 row r (nb blocks of 18 bytes, rows laid
// end to end) with Q8_0-block activations, one block per vector: the
// general form, for block counts dotQ4_0Q8PairsAVX2 cannot take (odd).
TEXT ·dotQ4_0Q8RowsAVX2(SB), NOSPLIT, $0-56
	MOVQ w+0(FP), SI
	MOVQ rows+40(FP), R11
	MOVQ dst+48(FP), DI
	MOVL $0x00010001, AX
	VMOVD AX, X15
	VPBROADCASTD X15, Y15
	MOVL $0x0f0f0f0f, AX
	VMOVD AX, X14
	VPBROADCASTD X14, Y14
rq4row:
	CMPQ R11, $0
	JE   rq4end
	MOVQ xq+8(FP), R8
	MOVQ xd+16(FP), R9
	MOVQ xs+24(FP), R10
	MOVQ nb+32(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y6, Y6, Y6
	VXORPS X7, X7, X7
rq4q8loop4:
	CMPQ CX, $4
	JL   rq4q8loop
	PREFETCHT0 1024(SI)
	MOVWLZX (SI), AX
	VMOVD AX, X9
	MOVWLZX 18(SI), AX
	VPINSRW $1, AX, X9, X9
	MOVWLZX 36(SI), AX
	VPINSRW $2, AX, X9, X9
	MOVWLZX 54(SI), AX
	VPINSRW $3, AX, X9, X9
	VCVTPH2PS X9, X9
	VFMADD231PS (R10), X9, X7
	VMULPS (R9), X9, X9
	VBROADCASTSS X9, Y10
	VPERMILPS $0x55, X9, X11
	VBROADCASTSS X11, Y11
	VPERMILPS $0xaa, X9, X12
	VBROADCASTSS X12, Y12
	VPERMILPS $0xff, X9, X13
	VBROADCASTSS X13, Y13
	VMOVDQU 2(SI), X1
	VPSRLW $4, X1, X2
	VINSERTI128 $1, X2, Y1, Y1
	VPAND Y14, Y1, Y1
	VPMADDUBSW 0(R8), Y1, Y5
	VPMADDWD Y15, Y5, Y5
	VCVTDQ2PS Y5, Y5
	VFMADD231PS Y10, Y5, Y0
	VMOVDQU 20(SI), X1
	VPSRLW $4, X1, X2
	VINSERTI128 $1, X2, Y1, Y1
	VPAND Y14, Y1, Y1
	VPMADDUBSW 32(R8), Y1, Y5
	VPMADDWD Y15, Y5, Y5
	VCVTDQ2PS Y5, Y5
	VFMADD231PS Y11, Y5, Y6
	VMOVDQU 38(SI), X1
	VPSRLW $4, X1, X2
	VINSERTI128 $1, X2, Y1, Y1
	VPAND Y14, Y1, Y1
	VPMADDUBSW 64(R8), Y1, Y5
	VPMADDWD Y15, Y5, Y5
	VCVTDQ2PS Y5, Y5
	VFMADD231PS Y12, Y5, Y0
	VMOVDQU 56(SI), X1
	VPSRLW $4, X1, X2
	VINSERTI128 $1, X2, Y1, Y1
	VPAND Y14, Y1, Y1
	VPMADDUBSW 96(R8), Y1, Y5
	VPMADDWD Y15, Y5, Y5
	VCVTDQ2PS Y5, Y5
	VFMADD231PS Y13, Y5, Y6
	ADDQ $72, SI
	ADDQ $128, R8
	ADDQ $16, R9
	ADDQ $16, R10
	SUBQ $4, CX
	JMP  rq4q8loop4
rq4q8loop:
	CMPQ CX, $0
	JE   rq4q8done
	MOVWLZX (SI), AX
	VMOVD AX, X9
	VCVTPH2PS X9, X9
	VFMADD231SS (R10), X9, X7
	VMULSS (R9), X9, X9
	VBROADCASTSS X9, Y10
	VMOVDQU 2(SI), X1
	VPSRLW $4, X1, X2
	VINSERTI128 $1, X2, Y1, Y1
	VPAND Y14, Y1, Y1
	VPMADDUBSW 0(R8), Y1, Y5
	VPMADDWD Y15, Y5, Y5
	VCVTDQ2PS Y5, Y5
	VFMADD231PS Y10, Y5, Y0
	ADDQ $18, SI
	ADDQ $32, R8
	ADDQ $4, R9
	ADDQ $4, R10
	DECQ CX
	JMP  rq4q8loop
rq4q8done:
	VADDPS Y6, Y0, Y0
	HSUM
	VHADDPS X7, X7, X7
	VHADDPS X7, X7, X7
	MOVL $0x41000000, AX
	VMOVD AX, X8
	VFNMADD231SS X8, X7, X0
	MOVSS X0, (DI)
	ADDQ $4, DI
	DECQ R11
	JMP  rq4row
rq4end:
	VZEROUPPER
	RET


// Byte-shuffle controls that spread int16 scale 2k over the low 128-bit
// lane and scale 2k+1 over the high lane (of a register holding the eight
// scales in both lanes).
DATA q6kshuf<>+0(SB)/8, $0x0100010001000100
DATA q6kshuf<>+8(SB)/8, $0x0100010001000100
DATA q6kshuf<>+16(SB)/8, $0x0302030203020302
DATA q6kshuf<>+24(SB)/8, $0x0302030203020302
DATA q6kshuf<>+32(SB)/8, $0x0504050405040504
DATA q6kshuf<>+40(SB)/8, $0x0504050405040504
DATA q6kshuf<>+48(SB)/8, $0x0706070607060706
DATA q6kshuf<>+56(SB)/8, $0x0706070607060706
DATA q6kshuf<>+64(SB)/8, $0x0908090809080908
DATA q6kshuf<>+72(SB)/8, $0x0908090809080908
DATA q6kshuf<>+80(SB)/8, $0x0b0a0b0a0b0a0b0a
DATA q6kshuf<>+88(SB)/8, $0x0b0a0b0a0b0a0b0a
DATA q6kshuf<>+96(SB)/8, $0x0d0c0d0c0d0c0d0c
DATA q6kshuf<>+104(SB)/8, $0x0d0c0d0c0d0c0d0c
DATA q6kshuf<>+112(SB)/8, $0x0f0e0f0e0f0e0f0e
DATA q6kshuf<>+120(SB)/8, $0x0f0e0f0e0f0e0f0e
GLOBL q6kshuf<>(SB), RODATA|NOPTR, $128


// func dotBF16AVX2(w *byte, x *float32, n int) float32
// n must be a multiple of 8. A bfloat16 is the top half of a float32.
TEXT ·dotBF16AVX2(SB), NOSPLIT, $0-28
	MOVQ w+0(FP), SI
	MOVQ x+8(FP), DI
	MOVQ n+16(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
bf16loop16:
	CMPQ CX, $16
	JL   bf16loop8
	PREFETCHT0 1024(SI)
	VPMOVZXWD (SI), Y4
	VPMOVZXWD 16(SI), Y5
	VPSLLD $16, Y4, Y4
	VPSLLD $16, Y5, Y5
	VFMADD231PS (DI), Y4, Y0
	VFMADD231PS 32(DI), Y5, Y1
	ADDQ $32, SI
	ADDQ $64, DI
	SUBQ $16, CX
	JMP  bf16loop16
bf16loop8:
	CMPQ CX, $8
	JL   bf16done
	VPMOVZXWD (SI), Y4
	VPSLLD $16, Y4, Y4
	VFMADD231PS (DI), Y4, Y0
bf16done:
	VADDPS Y1, Y0, Y0
	HSUM
	VZEROUPPER
	MOVSS X0, ret+24(FP)
	RET

// func bf16ToF32AVX2(src *byte, dst *float32, n int)
// n must be a multiple of 8.
TEXT ·bf16ToF32AVX2(SB), NOSPLIT, $0-24
	MOVQ src+0(FP), SI
	MOVQ dst+8(FP), DI
	MOVQ n+16(FP), CX
bftofloop:
	CMPQ CX, $8
	JL   bftofdone
	VPMOVZXWD (SI), Y1
	VPSLLD $16, Y1, Y1
	VMOVUPS Y1, (DI)
	ADDQ $16, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  bftofloop
bftofdone:
	VZEROUPPER
	RET

// func dequantQ8_0AVX2(w *byte, dst *float32, nb int)
TEXT ·dequantQ8_0AVX2(SB), NOSPLIT, $0-24
	MOVQ w+0(FP), SI
	MOVQ dst+8(FP), DI
	MOVQ nb+16(FP), CX
dq8loop:
	CMPQ CX, $0
	JE   dq8done
	MOVWLZX (SI), AX
	VMOVD AX, X9
	VCVTPH2PS X9, X9
	VBROADCASTSS X9, Y9
	VPMOVSXBD 2(SI), Y4
	VPMOVSXBD 10(SI), Y5
	VPMOVSXBD 18(SI), Y6
	VPMOVSXBD 26(SI), Y7
	VCVTDQ2PS Y4, Y4
	VCVTDQ2PS Y5, Y5
	VCVTDQ2PS Y6, Y6
	VCVTDQ2PS Y7, Y7
	VMULPS Y9, Y4, Y4
	VMULPS Y9, Y5, Y5
	VMULPS Y9, Y6, Y6
	VMULPS Y9, Y7, Y7
	VMOVUPS Y4, (DI)
	VMOVUPS Y5, 32(DI)
	VMOVUPS Y6, 64(DI)
	VMOVUPS Y7, 96(DI)
	ADDQ $34, SI
	ADDQ $128, DI
	DECQ CX
	JMP  dq8loop
dq8done:
	VZEROUPPER
	RET

// func dequantQ4_0AVX2(w *byte, dst *float32, nb int)
TEXT ·dequantQ4_0AVX2(SB), NOSPLIT, $0-24
	MOVQ w+0(FP), SI
	MOVQ dst+8(FP), DI
	MOVQ nb+16(FP), CX
	MOVL $0x0f0f0f0f, AX
	VMOVD AX, X15
	VPBROADCASTD X15, X15
	MOVL $0x08080808, AX
	VMOVD AX, X14
	VPBROADCASTD X14, X14
dq4loop:
	CMPQ CX, $0
	JE   dq4done
	MOVWLZX (SI), AX
	VMOVD AX, X9
	VCVTPH2PS X9, X9
	VBROADCASTSS X9, Y9
	VMOVDQU 2(SI), X4
	VPSRLW $4, X4, X5
	VPAND X15, X4, X4
	VPAND X15, X5, X5
	VPSUBB X14, X4, X4
	VPSUBB X14, X5, X5
	VPMOVSXBD X4, Y6
	VPSRLDQ $8, X4, X4
	VPMOVSXBD X4, Y7
	VPMOVSXBD X5, Y10
	VPSRLDQ $8, X5, X5
	VPMOVSXBD X5, Y11
	VCVTDQ2PS Y6, Y6
	VCVTDQ2PS Y7, Y7
	VCVTDQ2PS Y10, Y10
	VCVTDQ2PS Y11, Y11
	VMULPS Y9, Y6, Y6
	VMULPS Y9, Y7, Y7
	VMULPS Y9, Y10, Y10
	VMULPS Y9, Y11, Y11
	VMOVUPS Y6, (DI)
	VMOVUPS Y7, 32(DI)
	VMOVUPS Y10, 64(DI)
	VMOVUPS Y11, 96(DI)
	ADDQ $18, SI
	ADDQ $128, DI
	DECQ CX
	JMP  dq4loop
dq4done:
	VZEROUPPER
	RET

// Q4_0 pair block: the 32 nibbles of two blocks (weights at off(SI) and
// off+18(SI)) side by side in one vector, low nibbles times the record's
// first 32 activations, high nibbles times the next 32, the int16 products
// summed to int32 (four lanes per block), converted, scaled by the
// record's activation scales and accumulated with the weight scales dw.
#define Q4PAIR(off, rec, dw, acc, t1, t2) \
	VMOVDQU (off+2)(SI), t1 \
	VINSERTI128 $1, (off+20)(SI), t1, t1 \
	VPSRLW $4, t1, t2 \
	VPAND Y14, t1, t1 \
	VPAND Y14, t2, t2 \
	VPMADDUBSW (rec)(R8), t1, t1 \
	VPMADDUBSW (rec+32)(R8), t2, t2 \
	VPADDW t2, t1, t1 \
	VPMADDWD Y15, t1, t1 \
	VCVTDQ2PS t1, t1 \
	VMULPS (rec+64)(R8), t1, t1 \
	VFMADD231PS dw, t1, acc

// func dotQ4_0Q8PairsAVX2(w *byte, pairs *byte, xs *float32, nb, rows int, dst *float32)
// Like dotQ4_0Q8RowsAVX2 with the activations as q8Acts.pairs records
// (nb even): two weight blocks per vector, about 7 vector operations a
// block instead of 11.
TEXT ·dotQ4_0Q8PairsAVX2(SB), NOSPLIT, $0-48
	MOVQ w+0(FP), SI
	MOVQ rows+32(FP), R11
	MOVQ dst+40(FP), DI
	MOVL $0x00010001, AX
	VMOVD AX, X15
	VPBROADCASTD X15, Y15
	MOVL $0x0f0f0f0f, AX
	VMOVD AX, X14
	VPBROADCASTD X14, Y14
	MOVQ $0x0101010100000000, AX
	VMOVQ AX, X12
	VPMOVZXBD X12, Y12
	MOVQ $0x0303030302020202, AX
	VMOVQ AX, X13
	VPMOVZXBD X13, Y13
p4row:
	CMPQ R11, $0
	JE   p4end
	MOVQ pairs+8(FP), R8
	MOVQ xs+16(FP), R10
	MOVQ nb+24(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y6, Y6, Y6
	VXORPS X7, X7, X7
p4loop4:
	CMPQ CX, $4
	JL   p4pair
	PREFETCHT0 1024(SI)
	MOVWLZX 0(SI), AX
	MOVWLZX 18(SI), BX
	SHLQ $16, BX
	ORQ  BX, AX
	MOVWLZX 36(SI), BX
	SHLQ $32, BX
	ORQ  BX, AX
	MOVWLZX 54(SI), BX
	SHLQ $48, BX
	ORQ  BX, AX
	VMOVQ AX, X9
	VCVTPH2PS X9, X9
	VFMADD231PS (R10), X9, X7
	VPERMPS Y9, Y12, Y10
	VPERMPS Y9, Y13, Y11
	Q4PAIR(0, 0, Y10, Y0, Y1, Y2)
	Q4PAIR(36, 96, Y11, Y6, Y3, Y4)
	ADDQ $72, SI
	ADDQ $192, R8
	ADDQ $16, R10
	SUBQ $4, CX
	JMP  p4loop4
p4pair:
	CMPQ CX, $0
	JE   p4done
	MOVWLZX 0(SI), AX
	MOVWLZX 18(SI), BX
	SHLQ $16, BX
	ORQ  BX, AX
	VMOVQ AX, X9
	VCVTPH2PS X9, X9
	VMOVQ (R10), X8
	VFMADD231PS X8, X9, X7
	VPERMPS Y9, Y12, Y10
	Q4PAIR(0, 0, Y10, Y0, Y1, Y2)
	ADDQ $36, SI
	ADDQ $96, R8
	ADDQ $8, R10
	SUBQ $2, CX
	JMP  p4pair
p4done:
	VADDPS Y6, Y0, Y0
	HSUM
	VHADDPS X7, X7, X7
	VHADDPS X7, X7, X7
	MOVL $0x41000000, AX
	VMOVD AX, X8
	VFNMADD231SS X8, X7, X0
	MOVSS X0, (DI)
	ADDQ $4, DI
	DECQ R11
	JMP  p4row
p4end:
	VZEROUPPER
	RET

// One 32-value group of a Q6_K half block times Q8_K activations: Y6 holds
// the unsigned 6-bit values, the int16 products are scaled by the group's
// two scales (k selects them from Y3, see q6kshuf) and summed into the
// block's int32 accumulator Y1. The "−32" of every value is taken out
// once per block from the activations' 16-value sums.
#define Q6KG(xoff, k) \
	VPMADDUBSW xoff(R8), Y6, Y7 \
	VPSHUFB k(DX), Y3, Y8 \
	VPMADDWD Y8, Y7, Y7 \
	VPADDD Y7, Y1, Y1

// Half a Q6_K block: ql at qloff and qloff2, qh at qhoff, the half's
// scales from Y11 (perm), activations at x0..x3. The two high bits of
// each value are moved to bits 4-5 with one shift (of 16-bit lanes; the
// mask drops what crosses from the neighbouring byte) and a mask.
#define Q6KH(qloff, qloff2, qhoff, perm, x0, x1, x2, x3) \
	VMOVDQU qloff(SI), Y4 \
	VMOVDQU qloff2(SI), Y5 \
	VMOVDQU qhoff(SI), Y10 \
	VPERM2I128 perm, Y11, Y11, Y3 \
	VPAND Y14, Y4, Y6 \
	VPSLLW $4, Y10, Y7 \
	VPAND Y12, Y7, Y7 \
	VPOR Y7, Y6, Y6 \
	Q6KG(x0, 0) \
	VPAND Y14, Y5, Y6 \
	VPSLLW $2, Y10, Y7 \
	VPAND Y12, Y7, Y7 \
	VPOR Y7, Y6, Y6 \
	Q6KG(x1, 32) \
	VPSRLW $4, Y4, Y6 \
	VPAND Y14, Y6, Y6 \
	VPAND Y12, Y10, Y7 \
	VPOR Y7, Y6, Y6 \
	Q6KG(x2, 64) \
	VPSRLW $4, Y5, Y6 \
	VPAND Y14, Y6, Y6 \
	VPSRLW $2, Y10, Y7 \
	VPAND Y12, Y7, Y7 \
	VPOR Y7, Y6, Y6 \
	Q6KG(x3, 96)

// func dotQ6_KQ8KRowsAVX2(w *byte, xq *int8, xd *float32, bsums *int16, nb, rows int, dst *float32)
// dst[r] = the dot product of Q6_K row r (nb blocks of 210 bytes) with
// Q8_K activations: each block summed in int32, converted once.
TEXT ·dotQ6_KQ8KRowsAVX2(SB), NOSPLIT, $0-56
	MOVQ w+0(FP), SI
	MOVQ rows+40(FP), R11
	MOVQ dst+48(FP), DI
	MOVL $0x0f0f0f0f, AX
	VMOVD AX, X14
	VPBROADCASTD X14, Y14
	MOVL $0x30303030, AX
	VMOVD AX, X12
	VPBROADCASTD X12, Y12
	LEAQ q6kshuf<>(SB), DX
q6krow:
	CMPQ R11, $0
	JE   q6kend
	MOVQ xq+8(FP), R8
	MOVQ xd+16(FP), R9
	MOVQ bsums+24(FP), R10
	MOVQ nb+32(FP), CX
	VXORPS Y0, Y0, Y0
q6kblk:
	CMPQ CX, $0
	JE   q6kdone
	PREFETCHT0 1024(SI)
	PREFETCHT0 1088(SI)
	PREFETCHT0 1152(SI)
	PREFETCHT0 1216(SI)
	VPMOVSXBW 192(SI), Y11
	VPMADDWD (R10), Y11, Y9
	VPSLLD $5, Y9, Y9
	VPXOR Y1, Y1, Y1
	Q6KH(0, 32, 128, $0x00, 0, 32, 64, 96)
	Q6KH(64, 96, 160, $0x11, 128, 160, 192, 224)
	VPSUBD Y9, Y1, Y1
	VCVTDQ2PS Y1, Y1
	MOVWLZX 208(SI), AX
	VMOVD AX, X2
	VCVTPH2PS X2, X2
	VMULSS (R9), X2, X2
	VBROADCASTSS X2, Y2
	VFMADD231PS Y2, Y1, Y0
	ADDQ $210, SI
	ADDQ $256, R8
	ADDQ $4, R9
	ADDQ $32, R10
	DECQ CX
	JMP  q6kblk
q6kdone:
	HSUM
	MOVSS X0, (DI)
	ADDQ $4, DI
	DECQ R11
	JMP  q6krow
q6kend:
	VZEROUPPER
	RET

// q4kshuf: entry j (32 bytes) broadcasts int16 lane j over both lanes.
DATA q4kshuf<>+0(SB)/8, $0x0100010001000100
DATA q4kshuf<>+8(SB)/8, $0x0100010001000100
DATA q4kshuf<>+16(SB)/8, $0x0100010001000100
DATA q4kshuf<>+24(SB)/8, $0x0100010001000100
DATA q4kshuf<>+32(SB)/8, $0x0302030203020302
DATA q4kshuf<>+40(SB)/8, $0x0302030203020302
DATA q4kshuf<>+48(SB)/8, $0x0302030203020302
DATA q4kshuf<>+56(SB)/8, $0x0302030203020302
DATA q4kshuf<>+64(SB)/8, $0x0504050405040504
DATA q4kshuf<>+72(SB)/8, $0x0504050405040504
DATA q4kshuf<>+80(SB)/8, $0x0504050405040504
DATA q4kshuf<>+88(SB)/8, $0x0504050405040504
DATA q4kshuf<>+96(SB)/8, $0x0706070607060706
DATA q4kshuf<>+104(SB)/8, $0x0706070607060706
DATA q4kshuf<>+112(SB)/8, $0x0706070607060706
DATA q4kshuf<>+120(SB)/8, $0x0706070607060706
DATA q4kshuf<>+128(SB)/8, $0x0908090809080908
DATA q4kshuf<>+136(SB)/8, $0x0908090809080908
DATA q4kshuf<>+144(SB)/8, $0x0908090809080908
DATA q4kshuf<>+152(SB)/8, $0x0908090809080908
DATA q4kshuf<>+160(SB)/8, $0x0b0a0b0a0b0a0b0a
DATA q4kshuf<>+168(SB)/8, $0x0b0a0b0a0b0a0b0a
DATA q4kshuf<>+176(SB)/8, $0x0b0a0b0a0b0a0b0a
DATA q4kshuf<>+184(SB)/8, $0x0b0a0b0a0b0a0b0a
DATA q4kshuf<>+192(SB)/8, $0x0d0c0d0c0d0c0d0c
DATA q4kshuf<>+200(SB)/8, $0x0d0c0d0c0d0c0d0c
DATA q4kshuf<>+208(SB)/8, $0x0d0c0d0c0d0c0d0c
DATA q4kshuf<>+216(SB)/8, $0x0d0c0d0c0d0c0d0c
DATA q4kshuf<>+224(SB)/8, $0x0f0e0f0e0f0e0f0e
DATA q4kshuf<>+232(SB)/8, $0x0f0e0f0e0f0e0f0e
DATA q4kshuf<>+240(SB)/8, $0x0f0e0f0e0f0e0f0e
DATA q4kshuf<>+248(SB)/8, $0x0f0e0f0e0f0e0f0e
GLOBL q4kshuf<>(SB), RODATA|NOPTR, $256

// 64 values of a Q4_K block (32 bytes of qs at 16+32i: low nibbles are
// sub-block 2i, high nibbles 2i+1) times Q8_K activations, each half
// scaled by its 6-bit sub-block scale (from Y4) into the int32 sum Y1.
#define Q4KSUB(qoff, xoff, soff) \
	VMOVDQU qoff(SI), Y6 \
	VPSRLW $4, Y6, Y7 \
	VPAND Y14, Y6, Y6 \
	VPAND Y14, Y7, Y7 \
	VPMADDUBSW xoff(R8), Y6, Y6 \
	VPMADDUBSW (xoff+32)(R8), Y7, Y7 \
	VPSHUFB soff(DX), Y4, Y8 \
	VPMADDWD Y8, Y6, Y6 \
	VPSHUFB (soff+32)(DX), Y4, Y8 \
	VPMADDWD Y8, Y7, Y7 \
	VPADDD Y6, Y1, Y1 \
	VPADDD Y7, Y1, Y1

// func dotQ4_KQ8KRowsAVX2(w *byte, xq *int8, xd *float32, bsums *int16, nb, rows int, dst *float32)
// dst[r] = the dot product of Q4_K row r (nb blocks of 144 bytes) with
// Q8_K activations: per block, d·Σ sc·(q·a) in int32 and dmin·Σ m·Σa from
// the activations' 16-value sums, both times the activation scale.
TEXT ·dotQ4_KQ8KRowsAVX2(SB), NOSPLIT, $0-56
	MOVQ w+0(FP), SI
	MOVQ rows+40(FP), R11
	MOVQ dst+48(FP), DI
	MOVL $0x0f0f0f0f, AX
	VMOVD AX, X14
	VPBROADCASTD X14, Y14
	LEAQ q4kshuf<>(SB), DX
q4krow:
	CMPQ R11, $0
	JE   q4kend
	MOVQ xq+8(FP), R8
	MOVQ xd+16(FP), R9
	MOVQ bsums+24(FP), R10
	MOVQ nb+32(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS X15, X15, X15
q4kblk:
	CMPQ CX, $0
	JE   q4kdone
	PREFETCHT0 1024(SI)
	PREFETCHT0 1088(SI)
	PREFETCHT0 1152(SI)
	// The eight 6-bit scales and mins, as llama.cpp unpacks them:
	// scales = u0&0x3f.. | (u2&0x0f.. | ((u0>>6)&0x03..)<<4) << 32,
	// mins = u1&0x3f.. | ((u2>>4)&0x0f.. | ((u1>>6)&0x03..)<<4) << 32.
	MOVL 12(SI), R13
	SHRL $4, R13
	ANDL $0x0f0f0f0f, R13
	MOVL 8(SI), AX
	SHRL $6, AX
	ANDL $0x03030303, AX
	SHLL $4, AX
	ORL  AX, R13
	MOVL 8(SI), BX
	ANDL $0x3f3f3f3f, BX
	SHLQ $32, R13
	ORQ  R13, BX
	MOVL 12(SI), R12
	ANDL $0x0f0f0f0f, R12
	MOVL 4(SI), AX
	SHRL $6, AX
	ANDL $0x03030303, AX
	SHLL $4, AX
	ORL  AX, R12
	MOVL 4(SI), AX
	ANDL $0x3f3f3f3f, AX
	SHLQ $32, R12
	ORQ  R12, AX
	VMOVQ AX, X4
	VPMOVZXBW X4, X4
	VINSERTI128 $1, X4, Y4, Y4
	VMOVQ BX, X5
	VPMOVZXBW X5, X5
	// Σ m·(sum of the sub-block's 32 activations), as 4 int32.
	VMOVDQU (R10), X6
	VPHADDW 16(R10), X6, X6
	VPMADDWD X5, X6, X6
	VCVTDQ2PS X6, X6
	MOVL (SI), R13
	VMOVD R13, X8
	VCVTPH2PS X8, X8
	VBROADCASTSS (R9), X9
	VMULPS X9, X8, X8
	VPERMILPS $0x55, X8, X9
	VFMADD231PS X9, X6, X15
	VBROADCASTSS X8, Y10
	VPXOR Y1, Y1, Y1
	Q4KSUB(16, 0, 0)
	Q4KSUB(48, 64, 64)
	Q4KSUB(80, 128, 128)
	Q4KSUB(112, 192, 192)
	VCVTDQ2PS Y1, Y1
	VFMADD231PS Y10, Y1, Y0
	ADDQ $144, SI
	ADDQ $256, R8
	ADDQ $4, R9
	ADDQ $32, R10
	DECQ CX
	JMP  q4kblk
q4kdone:
	HSUM
	VHADDPS X15, X15, X15
	VHADDPS X15, X15, X15
	VSUBSS X15, X0, X0
	MOVSS X0, (DI)
	ADDQ $4, DI
	DECQ R11
	JMP  q4krow
q4kend:
	VZEROUPPER
	RET

// HSUMTO sums the 8 lanes of acc into the low lane of accx (its X form),
// using tmpx.
#define HSUMTO(acc, accx, tmpx) \
	VEXTRACTF128 $1, acc, tmpx \
	VADDPS tmpx, accx, accx \
	VHADDPS accx, accx, accx \
	VHADDPS accx, accx, accx

// func attnScoresF16GAVX2(q *float32, heads int, k *byte, npos, hd int, scale float32, out *float32, stride int)
// out[h·stride+p] = scale·q_h·k_p for the g ≤ 4 queries q_h = q[h·hd:]
// of one KV group and npos half-float key rows of hd values (a multiple
// of 16): each key is loaded and converted once for all the group's
// queries. Two accumulators per query (even and odd 8-value chunks) keep
// the FMA latency covered.
TEXT ·attnScoresF16GAVX2(SB), NOSPLIT, $0-64
	MOVQ q+0(FP), R8
	MOVQ heads+8(FP), R10
	MOVQ k+16(FP), SI
	MOVQ npos+24(FP), CX
	MOVQ hd+32(FP), R9
	VBROADCASTSS scale+40(FP), Y15
	MOVQ out+48(FP), DI
	MOVQ stride+56(FP), R11
	SHLQ $2, R11
	MOVQ R9, R12
	SHLQ $2, R12
	LEAQ (R8)(R12*1), R13
	LEAQ (R8)(R12*2), DX
	LEAQ (R13)(R12*2), BX
	SHLQ $1, R9
gsp:
	CMPQ CX, $0
	JE   gsdone
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	XORQ AX, AX
gsc:
	VCVTPH2PS (SI)(AX*1), Y8
	VCVTPH2PS 16(SI)(AX*1), Y9
	VFMADD231PS (R8)(AX*2), Y8, Y0
	VFMADD231PS 32(R8)(AX*2), Y9, Y4
	CMPQ R10, $2
	JL   gsnext
	VFMADD231PS (R13)(AX*2), Y8, Y1
	VFMADD231PS 32(R13)(AX*2), Y9, Y5
	JE   gsnext
	VFMADD231PS (DX)(AX*2), Y8, Y2
	VFMADD231PS 32(DX)(AX*2), Y9, Y6
	CMPQ R10, $4
	JL   gsnext
	VFMADD231PS (BX)(AX*2), Y8, Y3
	VFMADD231PS 32(BX)(AX*2), Y9, Y7
gsnext:
	ADDQ $32, AX
	CMPQ AX, R9
	JL   gsc
	VADDPS Y4, Y0, Y0
	HSUMTO(Y0, X0, X8)
	VMULSS X15, X0, X0
	VMOVSS X0, (DI)
	CMPQ R10, $2
	JL   gsadv
	VADDPS Y5, Y1, Y1
	HSUMTO(Y1, X1, X8)
	VMULSS X15, X1, X1
	VMOVSS X1, (DI)(R11*1)
	JE   gsadv
	VADDPS Y6, Y2, Y2
	HSUMTO(Y2, X2, X8)
	VMULSS X15, X2, X2
	VMOVSS X2, (DI)(R11*2)
	CMPQ R10, $4
	JL   gsadv
	VADDPS Y7, Y3, Y3
	HSUMTO(Y3, X3, X8)
	VMULSS X15, X3, X3
	LEAQ (DI)(R11*2), AX
	VMOVSS X3, (AX)(R11*1)
gsadv:
	ADDQ $4, DI
	ADDQ R9, SI
	DECQ CX
	JMP  gsp
gsdone:
	VZEROUPPER
	RET

// func attnValuesF16GAVX2(w *float32, stride int, v *byte, npos, hd, heads int, out *float32)
// out[h·hd+d] = Σ_p w[h·stride+p]·v_p[d] for the g ≤ 4 queries of one KV
// group over npos ≥ 1 half-float value rows of hd values (a multiple of
// 16), 16 outputs per query at a time: each value chunk is loaded and
// converted once for all the group's queries.
TEXT ·attnValuesF16GAVX2(SB), NOSPLIT, $0-56
	MOVQ w+0(FP), R8
	MOVQ stride+8(FP), R11
	SHLQ $2, R11
	LEAQ (R8)(R11*1), R13
	LEAQ (R8)(R11*2), DX
	LEAQ (R13)(R11*2), BX
	MOVQ hd+32(FP), R9
	MOVQ heads+40(FP), R10
	MOVQ out+48(FP), DI
	MOVQ R9, R12
	SHLQ $2, R12
	SHLQ $1, R9
	XORQ R11, R11
gvc:
	CMPQ R11, R9
	JGE  gvdone
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	MOVQ v+16(FP), SI
	ADDQ R11, SI
	MOVQ npos+24(FP), CX
	XORQ AX, AX
gvp:
	VCVTPH2PS (SI), Y8
	VCVTPH2PS 16(SI), Y9
	VBROADCASTSS (R8)(AX*4), Y10
	VFMADD231PS Y10, Y8, Y0
	VFMADD231PS Y10, Y9, Y4
	CMPQ R10, $2
	JL   gvnext
	VBROADCASTSS (R13)(AX*4), Y11
	VFMADD231PS Y11, Y8, Y1
	VFMADD231PS Y11, Y9, Y5
	JE   gvnext
	VBROADCASTSS (DX)(AX*4), Y12
	VFMADD231PS Y12, Y8, Y2
	VFMADD231PS Y12, Y9, Y6
	CMPQ R10, $4
	JL   gvnext
	VBROADCASTSS (BX)(AX*4), Y13
	VFMADD231PS Y13, Y8, Y3
	VFMADD231PS Y13, Y9, Y7
gvnext:
	ADDQ R9, SI
	INCQ AX
	CMPQ AX, CX
	JL   gvp
	LEAQ (DI)(R11*2), SI
	VMOVUPS Y0, (SI)
	VMOVUPS Y4, 32(SI)
	CMPQ R10, $2
	JL   gvadv
	ADDQ R12, SI
	VMOVUPS Y1, (SI)
	VMOVUPS Y5, 32(SI)
	CMPQ R10, $2
	JE   gvadv
	ADDQ R12, SI
	VMOVUPS Y2, (SI)
	VMOVUPS Y6, 32(SI)
	CMPQ R10, $4
	JL   gvadv
	ADDQ R12, SI
	VMOVUPS Y3, (SI)
	VMOVUPS Y7, 32(SI)
gvadv:
	ADDQ $32, R11
	JMP  gvc
gvdone:
	VZEROUPPER
	RET

// q8perm puts the dwords of two vpackss passes back in order.
DATA q8perm<>+0(SB)/8, $0x0000000400000000
DATA q8perm<>+8(SB)/8, $0x0000000500000001
DATA q8perm<>+16(SB)/8, $0x0000000600000002
DATA q8perm<>+24(SB)/8, $0x0000000700000003
GLOBL q8perm<>(SB), RODATA|NOPTR, $32

// func quantizeQ8RowAVX2(x *float32, nb int, q *int8, amax *float32, sums *int32)
// For each of nb blocks of 32 values: amax[b] = max |x|, q = x·(127/amax)
// rounded to the nearest integer, ties to even (0 when amax is 0), and
// sums[b] = Σq; the rounding of quantizeQ8 and llama.cpp's AVX2
// quantize_row_q8_0.
TEXT ·quantizeQ8RowAVX2(SB), NOSPLIT, $0-40
	MOVQ x+0(FP), SI
	MOVQ nb+8(FP), CX
	MOVQ q+16(FP), DI
	MOVQ amax+24(FP), R8
	MOVQ sums+32(FP), R9
	MOVL $0x7fffffff, AX
	VMOVD AX, X15
	VPBROADCASTD X15, Y15
	MOVL $0x42fe0000, AX
	VMOVD AX, X14
	VMOVDQU q8perm<>(SB), Y13
q8rloop:
	CMPQ CX, $0
	JE   q8rdone
	VMOVUPS (SI), Y0
	VMOVUPS 32(SI), Y1
	VMOVUPS 64(SI), Y2
	VMOVUPS 96(SI), Y3
	// The largest |x| as integers: for values without their sign bit the
	// order is the float order, and a NaN is larger than +Inf, so it
	// reaches amax whatever its lane (vmaxps passes it over in most),
	// and the block's scale is NaN, as quantizeQ8's.
	VANDPS Y15, Y0, Y4
	VANDPS Y15, Y1, Y5
	VPMAXSD Y5, Y4, Y4
	VANDPS Y15, Y2, Y5
	VANDPS Y15, Y3, Y6
	VPMAXSD Y6, Y5, Y5
	VPMAXSD Y5, Y4, Y4
	VEXTRACTF128 $1, Y4, X5
	VPMAXSD X5, X4, X4
	VPERMILPS $0x4e, X4, X5
	VPMAXSD X5, X4, X4
	VPERMILPS $0xb1, X4, X5
	VPMAXSD X5, X4, X4
	VMOVSS X4, (R8)
	VXORPS X7, X7, X7
	VUCOMISS X7, X4
	JE   q8rzero
	VDIVSS X4, X14, X7
q8rzero:
	VBROADCASTSS X7, Y7
	VMULPS Y7, Y0, Y0
	VMULPS Y7, Y1, Y1
	VMULPS Y7, Y2, Y2
	VMULPS Y7, Y3, Y3
	VCVTPS2DQ Y0, Y0
	VCVTPS2DQ Y1, Y1
	VCVTPS2DQ Y2, Y2
	VCVTPS2DQ Y3, Y3
	VPADDD Y1, Y0, Y8
	VPADDD Y3, Y2, Y9
	VPADDD Y9, Y8, Y8
	VEXTRACTI128 $1, Y8, X9
	VPADDD X9, X8, X8
	VPHADDD X8, X8, X8
	VPHADDD X8, X8, X8
	VMOVD X8, (R9)
	VPACKSSDW Y1, Y0, Y0
	VPACKSSDW Y3, Y2, Y2
	VPACKSSWB Y2, Y0, Y0
	VPERMD Y0, Y13, Y0
	VMOVDQU Y0, (DI)
	ADDQ $128, SI
	ADDQ $32, DI
	ADDQ $4, R8
	ADDQ $4, R9
	DECQ CX
	JMP  q8rloop
q8rdone:
	VZEROUPPER
	RET

// func quantizeQ8KRowAVX2(x *float32, nb int, q *int8, d *float32, bsums *int16)
// quantizeQ8K for nb blocks of 256 values: the scale from the first value
// of largest magnitude (NaNs are passed over, as the Go code's > does), q
// rounded to the nearest integer, ties to even (the packs saturate at
// 127, llama.cpp's clamp), and the sums of every 16 values.
TEXT ·quantizeQ8KRowAVX2(SB), NOSPLIT, $0-40
	MOVQ x+0(FP), SI
	MOVQ nb+8(FP), CX
	MOVQ q+16(FP), DI
	MOVQ d+24(FP), R8
	MOVQ bsums+32(FP), R9
	MOVL $0x7fffffff, AX
	VMOVD AX, X15
	VPBROADCASTD X15, Y15
	VMOVDQU q8perm<>(SB), Y13
	MOVL $0xc2fe0000, AX
	VMOVD AX, X14
	MOVL $0x3f800000, AX
	VMOVD AX, X12
kblk:
	CMPQ CX, $0
	JE   kdone
	VXORPS Y4, Y4, Y4
	XORQ BX, BX
kmax:
	VANDPS (SI)(BX*1), Y15, Y0
	VMAXPS Y4, Y0, Y4
	ADDQ $32, BX
	CMPQ BX, $1024
	JL   kmax
	VEXTRACTF128 $1, Y4, X5
	VMAXPS X4, X5, X4
	VPERMILPS $0x4e, X4, X5
	VMAXPS X4, X5, X4
	VPERMILPS $0xb1, X4, X5
	VMAXPS X4, X5, X4
	VXORPS X6, X6, X6
	VUCOMISS X6, X4
	JNE  knonzero
	MOVL $0, (R8)
	VPXOR Y0, Y0, Y0
	VMOVDQU Y0, (DI)
	VMOVDQU Y0, 32(DI)
	VMOVDQU Y0, 64(DI)
	VMOVDQU Y0, 96(DI)
	VMOVDQU Y0, 128(DI)
	VMOVDQU Y0, 160(DI)
	VMOVDQU Y0, 192(DI)
	VMOVDQU Y0, 224(DI)
	VMOVDQU Y0, (R9)
	JMP  knext
knonzero:
	VBROADCASTSS X4, Y4
	XORQ BX, BX
kfind:
	VANDPS (SI)(BX*1), Y15, Y0
	VCMPPS $0, Y4, Y0, Y1
	VMOVMSKPS Y1, AX
	TESTL AX, AX
	JNZ  kfound
	ADDQ $32, BX
	CMPQ BX, $1024
	JL   kfind
	VMOVAPS X4, X5
	JMP  kscale
kfound:
	BSFL AX, AX
	LEAQ (SI)(BX*1), R10
	VMOVSS (R10)(AX*4), X5
kscale:
	VDIVSS X5, X14, X5
	VDIVSS X5, X12, X6
	VMOVSS X6, (R8)
	VBROADCASTSS X5, Y5
	XORQ BX, BX
	XORQ DX, DX
	XORQ R11, R11
kq:
	VMULPS (SI)(BX*1), Y5, Y0
	VMULPS 32(SI)(BX*1), Y5, Y1
	VMULPS 64(SI)(BX*1), Y5, Y2
	VMULPS 96(SI)(BX*1), Y5, Y3
	VCVTPS2DQ Y0, Y0
	VCVTPS2DQ Y1, Y1
	VCVTPS2DQ Y2, Y2
	VCVTPS2DQ Y3, Y3
	VPADDD Y1, Y0, Y8
	VPADDD Y3, Y2, Y9
	VPHADDD Y9, Y8, Y8
	VPHADDD Y8, Y8, Y8
	VEXTRACTI128 $1, Y8, X9
	VPADDD X9, X8, X8
	VPACKSSDW X8, X8, X8
	VMOVD X8, (R9)(R11*1)
	VPACKSSDW Y1, Y0, Y0
	VPACKSSDW Y3, Y2, Y2
	VPACKSSWB Y2, Y0, Y0
	VPERMD Y0, Y13, Y0
	VMOVDQU Y0, (DI)(DX*1)
	ADDQ $128, BX
	ADDQ $32, DX
	ADDQ $4, R11
	CMPQ BX, $1024
	JL   kq
knext:
	ADDQ $1024, SI
	ADDQ $256, DI
	ADDQ $4, R8
	ADDQ $32, R9
	DECQ CX
	JMP  kblk
kdone:
	VZEROUPPER
	RET

// func maxF32AVX2(x *float32, n int) float32
// The largest of n (a positive multiple of 8) values.
TEXT ·maxF32AVX2(SB), NOSPLIT, $0-20
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	VMOVUPS (SI), Y0
	VMOVAPS Y0, Y1
	ADDQ $32, SI
	SUBQ $8, CX
mxloop16:
	CMPQ CX, $16
	JL   mxloop8
	VMAXPS (SI), Y0, Y0
	VMAXPS 32(SI), Y1, Y1
	ADDQ $64, SI
	SUBQ $16, CX
	JMP  mxloop16
mxloop8:
	CMPQ CX, $8
	JL   mxdone
	VMAXPS (SI), Y0, Y0
	ADDQ $32, SI
	SUBQ $8, CX
	JMP  mxloop8
mxdone:
	VMAXPS Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VMAXPS X1, X0, X0
	VPERMILPS $0x4e, X0, X1
	VMAXPS X1, X0, X0
	VPERMILPS $0xb1, X0, X1
	VMAXPS X1, X0, X0
	VZEROUPPER
	MOVSS X0, ret+16(FP)
	RET

// F16ROWPAIR multiplies 16 half floats of the row at base (value index AX)
// with the activations in Y8, Y9 into the row's two accumulators.
#define F16ROWPAIR(base, a0, a1) \
	VCVTPH2PS (base)(AX*2), Y10 \
	VFMADD231PS Y8, Y10, a0 \
	VCVTPH2PS 16(base)(AX*2), Y11 \
	VFMADD231PS Y9, Y11, a1

// func dotF16RowsAVX2(w *byte, stride, n, rows int, x *float32, dst *float32)
// dst[r] = Σ_i half(w[r·stride + 2i])·x[i] for r < rows, n a multiple of
// 16. Four rows at a time: four streams from memory keep more reads in
// flight than one row after another.
TEXT ·dotF16RowsAVX2(SB), NOSPLIT, $0-48
	MOVQ w+0(FP), SI
	MOVQ stride+8(FP), R8
	MOVQ n+16(FP), R9
	MOVQ rows+24(FP), R11
	MOVQ x+32(FP), R10
	MOVQ dst+40(FP), DI
f16r4:
	CMPQ R11, $4
	JL   f16r1
	LEAQ (SI)(R8*1), BX
	LEAQ (SI)(R8*2), DX
	LEAQ (DX)(R8*1), R12
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	XORQ AX, AX
f16r4c:
	VMOVUPS (R10)(AX*4), Y8
	VMOVUPS 32(R10)(AX*4), Y9
	F16ROWPAIR(SI, Y0, Y1)
	F16ROWPAIR(BX, Y2, Y3)
	F16ROWPAIR(DX, Y4, Y5)
	F16ROWPAIR(R12, Y6, Y7)
	ADDQ $16, AX
	CMPQ AX, R9
	JL   f16r4c
	VADDPS Y1, Y0, Y0
	VADDPS Y3, Y2, Y2
	VADDPS Y5, Y4, Y4
	VADDPS Y7, Y6, Y6
	VHADDPS Y2, Y0, Y0
	VHADDPS Y6, Y4, Y4
	VHADDPS Y4, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS X1, X0, X0
	VMOVUPS X0, (DI)
	ADDQ $16, DI
	LEAQ (SI)(R8*4), SI
	SUBQ $4, R11
	JMP  f16r4
f16r1:
	CMPQ R11, $0
	JE   f16rdone
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	XORQ AX, AX
f16r1c:
	VMOVUPS (R10)(AX*4), Y8
	VMOVUPS 32(R10)(AX*4), Y9
	F16ROWPAIR(SI, Y0, Y1)
	ADDQ $16, AX
	CMPQ AX, R9
	JL   f16r1c
	VADDPS Y1, Y0, Y0
	HSUM
	VMOVSS X0, (DI)
	ADDQ $4, DI
	ADDQ R8, SI
	DECQ R11
	JMP  f16r1
f16rdone:
	VZEROUPPER
	RET
