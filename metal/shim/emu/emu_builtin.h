// Conversions of the emulator's uint3 built-ins to the type a kernel
// parameter declares (uint, ushort, uint2, ushort3, ...).
#pragma once
template <typename T> struct emu_builtin_conv;
#define EMU_SCALAR(T) template <> struct emu_builtin_conv<T> { static T get(uint3 v) { return (T)v.x; } };
#define EMU_VEC2(T) template <> struct emu_builtin_conv<T> { static T get(uint3 v) { return __builtin_convertvector(v.xy, T); } };
#define EMU_VEC3(T) template <> struct emu_builtin_conv<T> { static T get(uint3 v) { return __builtin_convertvector(v, T); } };
EMU_SCALAR(uint) EMU_SCALAR(ushort) EMU_SCALAR(int) EMU_SCALAR(short)
EMU_VEC2(uint2) EMU_VEC2(ushort2) EMU_VEC2(int2) EMU_VEC2(short2)
EMU_VEC3(uint3) EMU_VEC3(ushort3) EMU_VEC3(int3) EMU_VEC3(short3)
#undef EMU_SCALAR
#undef EMU_VEC2
#undef EMU_VEC3
template <typename T> inline T emu_builtin(uint3 v) { return emu_builtin_conv<T>::get(v); }
