#include "textflag.h"
#include "transpose_amd64.h"

DATA gemmqOnes<>+0(SB)/8, $0x0001000100010001
DATA gemmqOnes<>+8(SB)/8, $0x0001000100010001
DATA gemmqOnes<>+16(SB)/8, $0x0001000100010001
DATA gemmqOnes<>+24(SB)/8, $0x0001000100010001
GLOBL gemmqOnes<>(SB), RODATA|NOPTR, $32

// func gemmq16x6AVX2(w, a *byte, nb int, out *[96]float32)
// The int8 prefill micro-kernel (see gemmq16x6Generic): nb ≥ 1 blocks of
// a 16-row weight panel w (640 bytes each) and a 6-token activation tile a
// (240 bytes each); out[16t+r] += (S·d_a)·dw − dm·s_a per block. Y0–Y11
// hold the int16 sums of rows 0–7 and 8–15 for each token, Y12 and Y13 a
// quad of weights, Y14 an activation word broadcast, Y15 a product.

// QUAD0 starts token t's sums (A0, A1) with quad 0 of a block.
#define QUAD0(t, A0, A1) \
	VPBROADCASTD (32*(t))(DI), Y14 \
	VPMADDUBSW Y14, Y12, A0 \
	VPMADDUBSW Y14, Y13, A1

// QUADT adds quad j to token t's sums.
#define QUADT(j, t, A0, A1) \
	VPBROADCASTD (32*(t)+4*(j))(DI), Y14 \
	VPMADDUBSW Y14, Y12, Y15 \
	VPADDW Y15, A0, A0 \
	VPMADDUBSW Y14, Y13, Y14 \
	VPADDW Y14, A1, A1

#define LOADQUAD(j) \
	VMOVDQU (64*(j))(SI), Y12 \
	VMOVDQU (64*(j)+32)(SI), Y13

#define QUAD(j) \
	LOADQUAD(j) \
	QUADT(j, 0, Y0, Y1) \
	QUADT(j, 1, Y2, Y3) \
	QUADT(j, 2, Y4, Y5) \
	QUADT(j, 3, Y6, Y7) \
	QUADT(j, 4, Y8, Y9) \
	QUADT(j, 5, Y10, Y11)

// OUT8 adds (S·d_a)·dw − dm·s_a for rows 8p..8p+7 of token t (sums A,
// d_a in Y12, s_a in Y13) to out.
#define OUT8(t, p, A) \
	VPMADDWD gemmqOnes<>(SB), A, A \
	VCVTDQ2PS A, A \
	VMULPS Y12, A, A \
	VMOVUPS (64*(t)+32*(p))(DX), Y14 \
	VFMADD231PS (512+32*(p))(SI), A, Y14 \
	VFNMADD231PS (576+32*(p))(SI), Y13, Y14 \
	VMOVUPS Y14, (64*(t)+32*(p))(DX)

#define OUTT(t, A0, A1) \
	VBROADCASTSS (192+8*(t))(DI), Y12 \
	VBROADCASTSS (192+8*(t)+4)(DI), Y13 \
	OUT8(t, 0, A0) \
	OUT8(t, 1, A1)

TEXT ·gemmq16x6AVX2(SB), NOSPLIT, $0-32
	MOVQ w+0(FP), SI
	MOVQ a+8(FP), DI
	MOVQ nb+16(FP), CX
	MOVQ out+24(FP), DX
gq16loop:
	LOADQUAD(0)
	QUAD0(0, Y0, Y1)
	QUAD0(1, Y2, Y3)
	QUAD0(2, Y4, Y5)
	QUAD0(3, Y6, Y7)
	QUAD0(4, Y8, Y9)
	QUAD0(5, Y10, Y11)
	QUAD(1)
	QUAD(2)
	QUAD(3)
	QUAD(4)
	QUAD(5)
	QUAD(6)
	QUAD(7)
	OUTT(0, Y0, Y1)
	OUTT(1, Y2, Y3)
	OUTT(2, Y4, Y5)
	OUTT(3, Y6, Y7)
	OUTT(4, Y8, Y9)
	OUTT(5, Y10, Y11)
	ADDQ $640, SI
	ADDQ $240, DI
	DECQ CX
	JNZ gq16loop
	VZEROUPPER
	RET


DATA gemmqPerm<>+0(SB)/4, $0
DATA gemmqPerm<>+4(SB)/4, $4
DATA gemmqPerm<>+8(SB)/4, $1
DATA gemmqPerm<>+12(SB)/4, $5
DATA gemmqPerm<>+16(SB)/4, $2
DATA gemmqPerm<>+20(SB)/4, $6
DATA gemmqPerm<>+24(SB)/4, $3
DATA gemmqPerm<>+28(SB)/4, $7
GLOBL gemmqPerm<>(SB), RODATA|NOPTR, $32

// func q8AbsMaxAVX2(x *float32, nb int, amax *float32)
// amax[b] = max |x[i]| over block b (32 values) of x, for nb ≥ 1 blocks;
// NaN if one of them is, as absMaxGeneric. The maximum is taken on the
// values as integers: without their sign bit they order as floats do, and
// a NaN above +Inf (vmaxps would pass a NaN over in most lanes, and a Q8_0
// block would quantise it to a finite −128·d).
TEXT ·q8AbsMaxAVX2(SB), NOSPLIT, $0-24
	MOVQ x+0(FP), SI
	MOVQ nb+8(FP), CX
	MOVQ amax+16(FP), DI
	VPCMPEQD Y15, Y15, Y15
	VPSRLD $1, Y15, Y15
q8amloop:
	VANDPS (SI), Y15, Y0
	VANDPS 32(SI), Y15, Y1
	VANDPS 64(SI), Y15, Y2
	VANDPS 96(SI), Y15, Y3
	VPMAXSD Y1, Y0, Y0
	VPMAXSD Y3, Y2, Y2
	VPMAXSD Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VPMAXSD X1, X0, X0
	VPERMILPS $0x4e, X0, X1
	VPMAXSD X1, X0, X0
	VPERMILPS $0xb1, X0, X1
	VPMAXSD X1, X0, X0
	VMOVSS X0, (DI)
	ADDQ $128, SI
	ADDQ $4, DI
	DECQ CX
	JNZ q8amloop
	VZEROUPPER
	RET

// func q8ScaleRoundAVX2(x, scale *float32, nb int, dst *byte, sums *int32)
// For nb ≥ 1 blocks b of 32 values: the bytes at dst+240b are x·scale[b]
// rounded to the nearest integer, ties to even (vcvtps2dq), and sums[b]
// their sum. Packing to bytes saturates, but the quantisers' scales keep
// finite values within ±127 (so the sums, taken before, agree).
TEXT ·q8ScaleRoundAVX2(SB), NOSPLIT, $0-40
	MOVQ x+0(FP), SI
	MOVQ scale+8(FP), R8
	MOVQ nb+16(FP), CX
	MOVQ dst+24(FP), DI
	MOVQ sums+32(FP), R9
	VMOVDQU gemmqPerm<>(SB), Y7
q8srloop:
	VBROADCASTSS (R8), Y4
	VMULPS (SI), Y4, Y0
	VMULPS 32(SI), Y4, Y1
	VMULPS 64(SI), Y4, Y2
	VMULPS 96(SI), Y4, Y3
	VCVTPS2DQ Y0, Y0
	VCVTPS2DQ Y1, Y1
	VCVTPS2DQ Y2, Y2
	VCVTPS2DQ Y3, Y3
	VPADDD Y1, Y0, Y5
	VPADDD Y3, Y2, Y6
	VPADDD Y6, Y5, Y5
	VEXTRACTI128 $1, Y5, X6
	VPADDD X6, X5, X5
	VPSHUFD $0x4e, X5, X6
	VPADDD X6, X5, X5
	VPSHUFD $0xb1, X5, X6
	VPADDD X6, X5, X5
	VMOVD X5, (R9)
	VPACKSSDW Y1, Y0, Y0
	VPACKSSDW Y3, Y2, Y2
	VPACKSSWB Y2, Y0, Y0
	VPERMD Y0, Y7, Y0
	VMOVDQU Y0, (DI)
	ADDQ $128, SI
	ADDQ $4, R8
	ADDQ $240, DI
	ADDQ $4, R9
	DECQ CX
	JNZ q8srloop
	VZEROUPPER
	RET

// func gemmq6x8x6AVX2(w, a, bs *byte, nsb int, out *float32)
// The Q6_K prefill micro-kernel for one half (8 rows) of a panel (see
// gemmq6Generic): w points 32·half bytes into the panel, out 32·half
// bytes into the 16×6 outputs. Per pair of quads and token the two
// vpmaddubsw products (at most 4·63·127 in int16) are widened with the
// sub-block scales by vpmaddwd into the int32 sums Y0–Y5; per block of
// 32 the −32 offsets come off as 32·sc·Σa (vpmaddwd of the scale pairs
// with the token's two 16-value sums); per 256 values the sums are scaled
// by d_w·d_a into out. Y6, Y7 hold two quads, Y8, Y9 products.

// PAIRT adds quads 2p and 2p+1 (Y6, Y7) times token t's values, times the
// scale of their 16 values, to A.
#define PAIRT(p, t, A) \
	VPBROADCASTD (32*(t)+8*(p))(DI), Y8 \
	VPMADDUBSW Y8, Y6, Y8 \
	VPBROADCASTD (32*(t)+8*(p)+4)(DI), Y9 \
	VPMADDUBSW Y9, Y7, Y9 \
	VPADDW Y9, Y8, Y8 \
	VPMADDWD (512+64*((p)/2))(SI), Y8, Y8 \
	VPADDD Y8, A, A

#define PAIR(p) \
	VMOVDQU (128*(p))(SI), Y6 \
	VMOVDQU (128*(p)+64)(SI), Y7 \
	PAIRT(p, 0, Y0) \
	PAIRT(p, 1, Y1) \
	PAIRT(p, 2, Y2) \
	PAIRT(p, 3, Y3) \
	PAIRT(p, 4, Y4) \
	PAIRT(p, 5, Y5)

// OFFSET takes 32·(sc0·Σa[0:16] + sc1·Σa[16:32]) of token t off A.
#define OFFSET(t, A) \
	VPBROADCASTD (4*(t))(BX), Y8 \
	VPMADDWD 640(SI), Y8, Y8 \
	VPSUBD Y8, A, A

// OUT6 adds A·d_w·d_a to token t's outputs (SI and DI just past the last
// block of the 256: d_w of the last panel block at -64(SI), d_a of the
// last activation block at -48+8t(DI)).
#define OUT6(t, A) \
	VCVTDQ2PS A, A \
	VMULPS -64(SI), A, A \
	VBROADCASTSS (-48+8*(t))(DI), Y8 \
	VMOVUPS (64*(t))(DX), Y9 \
	VFMADD231PS Y8, A, Y9 \
	VMOVUPS Y9, (64*(t))(DX)

TEXT ·gemmq6x8x6AVX2(SB), NOSPLIT, $0-40
	MOVQ w+0(FP), SI
	MOVQ a+8(FP), DI
	MOVQ bs+16(FP), BX
	MOVQ nsb+24(FP), CX
	MOVQ out+32(FP), DX
gq6sb:
	VPXOR Y0, Y0, Y0
	VPXOR Y1, Y1, Y1
	VPXOR Y2, Y2, Y2
	VPXOR Y3, Y3, Y3
	VPXOR Y4, Y4, Y4
	VPXOR Y5, Y5, Y5
	MOVQ $8, R8
gq6blk:
	PAIR(0)
	PAIR(1)
	PAIR(2)
	PAIR(3)
	OFFSET(0, Y0)
	OFFSET(1, Y1)
	OFFSET(2, Y2)
	OFFSET(3, Y3)
	OFFSET(4, Y4)
	OFFSET(5, Y5)
	ADDQ $768, SI
	ADDQ $240, DI
	ADDQ $24, BX
	DECQ R8
	JNZ gq6blk
	OUT6(0, Y0)
	OUT6(1, Y1)
	OUT6(2, Y2)
	OUT6(3, Y3)
	OUT6(4, Y4)
	OUT6(5, Y5)
	DECQ CX
	JNZ gq6sb
	VZEROUPPER
	RET

DATA gemmqNib<>+0(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA gemmqNib<>+8(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA gemmqNib<>+16(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA gemmqNib<>+24(SB)/8, $0x0f0f0f0f0f0f0f0f
GLOBL gemmqNib<>(SB), RODATA|NOPTR, $32

DATA gemmqTwoBits<>+0(SB)/8, $0x0303030303030303
DATA gemmqTwoBits<>+8(SB)/8, $0x0303030303030303
DATA gemmqTwoBits<>+16(SB)/8, $0x0303030303030303
DATA gemmqTwoBits<>+24(SB)/8, $0x0303030303030303
GLOBL gemmqTwoBits<>(SB), RODATA|NOPTR, $32

// The panel packers expand 8 rows of a block into Y0–Y7 (32 values of
// one row each, in value order, one per byte), then transpose the 8×8
// matrix of 4-byte groups so that Y8+j holds values 4j..4j+3 of the 8
// rows: quad j of that half of the panel. AX holds the 16 row pointers,
// BX the offset of the block in the rows, DI the panel block.

// STOREQUADS stores Y8–Y15 as the 8 quads of one half of a panel block
// at off(DI).
#define STOREQUADS(off) \
	VMOVDQU Y8, (off)(DI) \
	VMOVDQU Y9, (off+64)(DI) \
	VMOVDQU Y10, (off+128)(DI) \
	VMOVDQU Y11, (off+192)(DI) \
	VMOVDQU Y12, (off+256)(DI) \
	VMOVDQU Y13, (off+320)(DI) \
	VMOVDQU Y14, (off+384)(DI) \
	VMOVDQU Y15, (off+448)(DI)

// Q40ROW expands row i's Q4_0 block into Y (X its low half): the 16 low
// nibbles, then the 16 high ones.
#define Q40ROW(i, X, Y) \
	MOVQ (8*(i))(AX), R10 \
	VMOVDQU 2(R10)(BX*1), X \
	VPSRLW $4, X, X8 \
	VINSERTI128 $1, X8, Y, Y \
	VPAND gemmqNib<>(SB), Y, Y

#define Q40HALF(h) \
	Q40ROW(8*(h)+0, X0, Y0) \
	Q40ROW(8*(h)+1, X1, Y1) \
	Q40ROW(8*(h)+2, X2, Y2) \
	Q40ROW(8*(h)+3, X3, Y3) \
	Q40ROW(8*(h)+4, X4, Y4) \
	Q40ROW(8*(h)+5, X5, Y5) \
	Q40ROW(8*(h)+6, X6, Y6) \
	Q40ROW(8*(h)+7, X7, Y7) \
	TRANSPOSE8 \
	STOREQUADS(32*(h))

// func packQ4_0QuadsAVX2(rows *[16]*byte, nb int, dst *byte)
// Stores the 4-bit values of nb ≥ 1 Q4_0 blocks of 16 rows as unsigned bytes
// in the quads of nb panel blocks (see gemmq.go); the scales are left as
// they are.
TEXT ·packQ4_0QuadsAVX2(SB), NOSPLIT, $0-24
	MOVQ rows+0(FP), AX
	MOVQ nb+8(FP), CX
	MOVQ dst+16(FP), DI
	XORQ BX, BX
pq40loop:
	Q40HALF(0)
	Q40HALF(1)
	ADDQ $18, BX
	ADDQ $640, DI
	DECQ CX
	JNZ pq40loop
	VZEROUPPER
	RET

// LONIB loads 32 bytes of row i at off into Y and keeps the low nibbles;
// HINIB keeps the high ones.
#define LONIB(i, off, Y) \
	MOVQ (8*(i))(AX), R10 \
	VMOVDQU (off)(R10)(BX*1), Y \
	VPAND gemmqNib<>(SB), Y, Y

#define HINIB(i, off, Y) \
	MOVQ (8*(i))(AX), R10 \
	VMOVDQU (off)(R10)(BX*1), Y \
	VPSRLW $4, Y, Y \
	VPAND gemmqNib<>(SB), Y, Y

// Q4KHALF packs the sub-block of the 32 bytes at off (the low nibbles with
// NIB = LONIB, the high ones with HINIB) for the rows of half h into the
// panel block at blk(DI).
#define Q4KHALF(NIB, h, off, blk) \
	NIB(8*(h)+0, off, Y0) \
	NIB(8*(h)+1, off, Y1) \
	NIB(8*(h)+2, off, Y2) \
	NIB(8*(h)+3, off, Y3) \
	NIB(8*(h)+4, off, Y4) \
	NIB(8*(h)+5, off, Y5) \
	NIB(8*(h)+6, off, Y6) \
	NIB(8*(h)+7, off, Y7) \
	TRANSPOSE8 \
	STOREQUADS((blk)+32*(h))

#define Q4KPAIR(j) \
	Q4KHALF(LONIB, 0, 16+32*(j), 640*(2*(j))) \
	Q4KHALF(LONIB, 1, 16+32*(j), 640*(2*(j))) \
	Q4KHALF(HINIB, 0, 16+32*(j), 640*(2*(j)+1)) \
	Q4KHALF(HINIB, 1, 16+32*(j), 640*(2*(j)+1))

// func packQ4_KQuadsAVX2(rows *[16]*byte, nsb int, dst *byte)
// packQ4_0QuadsAVX2 for nsb ≥ 1 Q4_K blocks of 256 values (8 panel blocks
// each): sub-blocks 2j and 2j+1 are the low and high nibbles of the 32
// bytes at 16+32j.
TEXT ·packQ4_KQuadsAVX2(SB), NOSPLIT, $0-24
	MOVQ rows+0(FP), AX
	MOVQ nsb+8(FP), CX
	MOVQ dst+16(FP), DI
	XORQ BX, BX
pq4kloop:
	Q4KPAIR(0)
	Q4KPAIR(1)
	Q4KPAIR(2)
	Q4KPAIR(3)
	ADDQ $144, BX
	ADDQ $5120, DI
	DECQ CX
	JNZ pq4kloop
	VZEROUPPER
	RET

// Q6ROW expands row i's values 128n+32m+l (l < 32) into Y: the low (m < 2,
// NIB = LONIB) or high nibble (HINIB) of ql at off, with bits 2m, 2m+1 of
// qh at hoff above (hshift = 2m; Q6ROW0 for m = 0).
#define Q6ROW(NIB, i, off, hoff, hshift, Y) \
	NIB(i, off, Y) \
	VMOVDQU (hoff)(R10)(BX*1), Y8 \
	VPSRLW $(hshift), Y8, Y8 \
	VPAND gemmqTwoBits<>(SB), Y8, Y8 \
	VPSLLW $4, Y8, Y8 \
	VPOR Y8, Y, Y

#define Q6ROW0(NIB, i, off, hoff, hshift, Y) \
	NIB(i, off, Y) \
	VMOVDQU (hoff)(R10)(BX*1), Y8 \
	VPAND gemmqTwoBits<>(SB), Y8, Y8 \
	VPSLLW $4, Y8, Y8 \
	VPOR Y8, Y, Y

#define Q6HALF(ROW, NIB, h, off, hoff, hshift, blk) \
	ROW(NIB, 8*(h)+0, off, hoff, hshift, Y0) \
	ROW(NIB, 8*(h)+1, off, hoff, hshift, Y1) \
	ROW(NIB, 8*(h)+2, off, hoff, hshift, Y2) \
	ROW(NIB, 8*(h)+3, off, hoff, hshift, Y3) \
	ROW(NIB, 8*(h)+4, off, hoff, hshift, Y4) \
	ROW(NIB, 8*(h)+5, off, hoff, hshift, Y5) \
	ROW(NIB, 8*(h)+6, off, hoff, hshift, Y6) \
	ROW(NIB, 8*(h)+7, off, hoff, hshift, Y7) \
	TRANSPOSE8 \
	STOREQUADS((blk)+32*(h))

// Q6BLOCK packs panel block 4n+m (of 768 bytes) of the 256 values.
#define Q6BLOCK(ROW, NIB, n, m) \
	Q6HALF(ROW, NIB, 0, 64*(n)+32*((m)%2), 128+32*(n), 2*(m), 768*(4*(n)+(m))) \
	Q6HALF(ROW, NIB, 1, 64*(n)+32*((m)%2), 128+32*(n), 2*(m), 768*(4*(n)+(m)))

// func packQ6_KQuadsAVX2(rows *[16]*byte, nsb int, dst *byte)
// packQ4_0QuadsAVX2 for nsb ≥ 1 Q6_K blocks of 256 values (8 panel blocks
// of q6PanelBlock bytes each): value 128n+32m+l is the low (m < 2) or
// high nibble of ql[64n+32(m%2)+l] with bits 2m, 2m+1 of qh[32n+l] above.
TEXT ·packQ6_KQuadsAVX2(SB), NOSPLIT, $0-24
	MOVQ rows+0(FP), AX
	MOVQ nsb+8(FP), CX
	MOVQ dst+16(FP), DI
	XORQ BX, BX
pq6kloop:
	Q6BLOCK(Q6ROW0, LONIB, 0, 0)
	Q6BLOCK(Q6ROW, LONIB, 0, 1)
	Q6BLOCK(Q6ROW, HINIB, 0, 2)
	Q6BLOCK(Q6ROW, HINIB, 0, 3)
	Q6BLOCK(Q6ROW0, LONIB, 1, 0)
	Q6BLOCK(Q6ROW, LONIB, 1, 1)
	Q6BLOCK(Q6ROW, HINIB, 1, 2)
	Q6BLOCK(Q6ROW, HINIB, 1, 3)
	ADDQ $210, BX
	ADDQ $6144, DI
	DECQ CX
	JNZ pq6kloop
	VZEROUPPER
	RET
