using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using QuantPeft.Quant.Codecs;

namespace QuantPeft.Quant.Kernels;

/// <summary>
/// Vectorised 4-bit decode of a range of whole blocks. Per block the 16 possible outputs are computed once,
/// <c>lut[c] = table[c] · absmax</c> (the same float32 multiply the reference does per element, then the same
/// round-to-nearest-even), and every element becomes a table lookup: <c>vpermps</c> over 16 float32 lanes, or
/// <c>vpermw</c> over 32 16-bit lanes, so the result is bit-identical to <see cref="ReferenceCodec"/> by construction.
/// With <c>stream</c> the AVX-512 loops store with <c>vmovntdq</c>: each iteration writes exactly one 64-byte line,
/// so a large output is written without first reading every destination line into the cache (which doubles the
/// memory traffic of a plain store stream); the values stored are the same.
/// </summary>
internal static unsafe class SimdFourBitDecoder
{
    /// <summary>Decodes elements [start, end) (start is a block boundary) from packed codes to float32; <c>stream</c>: non-temporal stores into 64-byte-aligned output.</summary>
    public static void ToSingle(byte* packed, float* absmax, float* table, int blockSize, int start, int end, float* output, bool stream = false)
    {
        float* lut = stackalloc float[16];
        for (int blockStart = start; blockStart < end; blockStart += blockSize)
        {
            int blockEnd = Math.Min(blockStart + blockSize, end);
            float scale = absmax[blockStart / blockSize];
            for (int c = 0; c < 16; c++) lut[c] = table[c] * scale;
            int i = blockStart;
            if (Avx512F.IsSupported && Avx512BW.IsSupported)
            {
                // Built in registers (same multiplies as lut[]): a vector load right after 16 scalar stores would stall.
                Vector512<float> lutVector = Vector512.Load(table) * Vector512.Create(scale);
                if (stream)
                {
                    for (; i + 32 <= blockEnd; i += 32)
                    {
                        Vector256<byte> codes = Unpack32(packed + i / 2);
                        Avx512F.StoreAlignedNonTemporal(output + i, Avx512F.PermuteVar16x32(lutVector, Avx512F.ConvertToVector512Int32(codes.GetLower())));
                        Avx512F.StoreAlignedNonTemporal(output + i + 16, Avx512F.PermuteVar16x32(lutVector, Avx512F.ConvertToVector512Int32(codes.GetUpper())));
                    }
                }
                for (; i + 32 <= blockEnd; i += 32)
                {
                    Vector256<byte> codes = Unpack32(packed + i / 2);
                    Avx512F.PermuteVar16x32(lutVector, Avx512F.ConvertToVector512Int32(codes.GetLower())).Store(output + i);
                    Avx512F.PermuteVar16x32(lutVector, Avx512F.ConvertToVector512Int32(codes.GetUpper())).Store(output + i + 16);
                }
            }
            else if (Avx2.IsSupported)
            {
                Vector256<float> low = Vector256.Load(lut), high = Vector256.Load(lut + 8);
                for (; i + 32 <= blockEnd; i += 32)
                {
                    Vector256<byte> codes = Unpack32(packed + i / 2);
                    for (int part = 0; part < 4; part++)
                    {
                        Vector256<int> index = Avx2.ConvertToVector256Int32(Vector128.CreateScalar(codes.AsUInt64()[part]).AsByte());
                        Vector256<float> upper = Vector256.GreaterThan(index, Vector256.Create(7)).AsSingle();
                        Avx.BlendVariable(Avx2.PermuteVar8x32(low, index), Avx2.PermuteVar8x32(high, index), upper).Store(output + i + part * 8);
                    }
                }
            }
            for (; i < blockEnd; i++) output[i] = lut[Code(packed, i)];
        }
        if (stream) Sse.StoreFence();
    }

    /// <summary>Decodes elements [start, end) to bfloat16 bits; <c>stream</c>: non-temporal stores into 64-byte-aligned output.</summary>
    public static void ToBFloat16(byte* packed, float* absmax, float* table, int blockSize, int start, int end, ushort* output, bool stream = false)
    {
        ushort* lut = stackalloc ushort[32];
        for (int blockStart = start; blockStart < end; blockStart += blockSize)
        {
            int blockEnd = Math.Min(blockStart + blockSize, end);
            float scale = absmax[blockStart / blockSize];
            int i = blockStart;
            if (Avx512BW.IsSupported)
            {
                Vector512<ushort> lutVector = BFloat16Lut(table, scale);
                if (stream)
                {
                    for (; i + 32 <= blockEnd; i += 32)
                        Avx512F.StoreAlignedNonTemporal(output + i, Avx512BW.PermuteVar32x16(lutVector, Avx512BW.ConvertToVector512UInt16(Unpack32(packed + i / 2))));
                }
                for (; i + 32 <= blockEnd; i += 32)
                    Avx512BW.PermuteVar32x16(lutVector, Avx512BW.ConvertToVector512UInt16(Unpack32(packed + i / 2))).Store(output + i);
            }
            if (i == blockEnd) continue;
            for (int c = 0; c < 16; c++) lut[c] = lut[c + 16] = FloatBits.SingleToBFloat16(table[c] * scale);
            i = WideLookup16(packed, lut, i, blockEnd, output);
            for (; i < blockEnd; i++) output[i] = lut[Code(packed, i)];
        }
        if (stream) Sse.StoreFence();
    }

    /// <summary>Decodes elements [start, end) to float16.</summary>
    public static void ToHalf(byte* packed, float* absmax, float* table, int blockSize, int start, int end, Half* output)
    {
        ushort* lut = stackalloc ushort[32];
        for (int blockStart = start; blockStart < end; blockStart += blockSize)
        {
            int blockEnd = Math.Min(blockStart + blockSize, end);
            float scale = absmax[blockStart / blockSize];
            for (int c = 0; c < 16; c++) lut[c] = lut[c + 16] = BitConverter.HalfToUInt16Bits((Half)(table[c] * scale));
            int i = WideLookup16(packed, lut, blockStart, blockEnd, (ushort*)output);
            for (; i < blockEnd; i++) ((ushort*)output)[i] = lut[Code(packed, i)];
        }
    }

    // 16-bit outputs: 32 codes index a 32-lane table (the 16 values twice) with one vpermw per 32 elements.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int WideLookup16(byte* packed, ushort* lut, int i, int blockEnd, ushort* output)
    {
        if (Avx512BW.IsSupported)
        {
            Vector512<ushort> lutVector = Vector512.Load(lut);
            for (; i + 32 <= blockEnd; i += 32)
                Avx512BW.PermuteVar32x16(lutVector, Avx512BW.ConvertToVector512UInt16(Unpack32(packed + i / 2))).Store(output + i);
        }
        else if (Avx2.IsSupported)
        {
            // Without vpermw: build each output as two byte planes with pshufb (a 16-entry byte lookup).
            Vector128<byte> lowBytes = Vector128.Create(
                (byte)lut[0], (byte)lut[1], (byte)lut[2], (byte)lut[3], (byte)lut[4], (byte)lut[5], (byte)lut[6], (byte)lut[7],
                (byte)lut[8], (byte)lut[9], (byte)lut[10], (byte)lut[11], (byte)lut[12], (byte)lut[13], (byte)lut[14], (byte)lut[15]);
            Vector128<byte> highBytes = Vector128.Create(
                (byte)(lut[0] >> 8), (byte)(lut[1] >> 8), (byte)(lut[2] >> 8), (byte)(lut[3] >> 8), (byte)(lut[4] >> 8), (byte)(lut[5] >> 8), (byte)(lut[6] >> 8), (byte)(lut[7] >> 8),
                (byte)(lut[8] >> 8), (byte)(lut[9] >> 8), (byte)(lut[10] >> 8), (byte)(lut[11] >> 8), (byte)(lut[12] >> 8), (byte)(lut[13] >> 8), (byte)(lut[14] >> 8), (byte)(lut[15] >> 8));
            for (; i + 32 <= blockEnd; i += 32)
            {
                Vector256<byte> codes = Unpack32(packed + i / 2);
                for (int half = 0; half < 2; half++)
                {
                    Vector128<byte> c = half == 0 ? codes.GetLower() : codes.GetUpper();
                    Vector128<byte> lo = Ssse3.Shuffle(lowBytes, c), hi = Ssse3.Shuffle(highBytes, c);
                    Sse2.UnpackLow(lo, hi).Store((byte*)(output + i + half * 16));
                    Sse2.UnpackHigh(lo, hi).Store((byte*)(output + i + half * 16 + 8));
                }
            }
        }
        return i;
    }

    // FloatBits.SingleToBFloat16 on 16 lanes (NaN branch included), duplicated into both halves of a 32-lane table.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<ushort> BFloat16Lut(float* table, float scale)
    {
        Vector512<uint> bits = (Vector512.Load(table) * Vector512.Create(scale)).AsUInt32();
        Vector512<uint> rounded = (bits + Vector512.Create(0x7FFFu) + ((bits >>> 16) & Vector512.Create(1u))) >>> 16;
        Vector512<uint> nan = Vector512.GreaterThan(bits & Vector512.Create(0x7FFF_FFFFu), Vector512.Create(0x7F80_0000u));
        Vector256<ushort> lut = Avx512F.ConvertToVector256UInt16(Vector512.ConditionalSelect(nan, (bits >>> 16) | Vector512.Create(0x40u), rounded));
        return Vector512.Create(lut, lut);
    }

    // 16 packed bytes → 32 codes in element order: byte j holds element 2j (high nibble) and 2j+1 (low nibble).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<byte> Unpack32(byte* source)
    {
        Vector256<ushort> widened = Avx2.ConvertToVector256Int16(Vector128.Load(source)).AsUInt16();
        return ((widened >>> 4) | ((widened & Vector256.Create((ushort)0x0F)) << 8)).AsByte();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Code(byte* packed, int index) => (index & 1) == 0 ? packed[index >> 1] >> 4 : packed[index >> 1] & 0x0F;
}
