using System.Runtime.Intrinsics;
using QuantPeft.Quant.Codecs;

namespace QuantPeft.Quant.Kernels;

/// <summary>Vectorised 4-bit encode of a range of whole blocks (see <see cref="SimdBlockEncoder"/>).</summary>
internal static unsafe class SimdFourBitEncoder
{
    /// <summary>Encodes elements [start, end) (start is a block boundary); writes their packed bytes and absmax.</summary>
    public static void Encode(float* input, int count, CodeBook book, int blockSize, int start, int end, byte* packed, float* absmax)
    {
        ReadOnlySpan<float> thresholdSpan = book.Thresholds;
        float* thresholds = stackalloc float[thresholdSpan.Length];
        thresholdSpan.CopyTo(new Span<float>(thresholds, thresholdSpan.Length));
        int* magnitudeCodes = null;
        int* magnitudeStorage = stackalloc int[16];
        if (book.IsSignMagnitude)
        {
            for (int k = 0; k < 16; k++) magnitudeStorage[k] = book.MagnitudeCodes[k & 7];
            magnitudeCodes = magnitudeStorage;
        }
        int zeroCode = book.Encode(0f);
        for (int blockStart = start; blockStart < end; blockStart += blockSize)
        {
            int blockEnd = Math.Min(blockStart + blockSize, end);
            float scale = SimdBlockEncoder.AbsMax(input + blockStart, blockEnd - blockStart, blockStart);
            absmax[blockStart / blockSize] = scale;
            float inverse = 1f / scale;
            int i = blockStart;
            if (Vector512.IsHardwareAccelerated)
            {
                for (; i + 32 <= blockEnd; i += 32)
                {
                    Vector512<int> first = SimdBlockEncoder.Codes16(input + i, inverse, thresholds, thresholdSpan.Length, magnitudeCodes);
                    Vector512<int> second = SimdBlockEncoder.Codes16(input + i + 16, inverse, thresholds, thresholdSpan.Length, magnitudeCodes);
                    // 32 codes as 16-bit lanes; each 32-bit lane then holds (code[2j], code[2j+1]) → one byte.
                    Vector512<uint> pairs = Vector512.Narrow(first, second).AsUInt32();
                    Vector512<uint> bytes = ((pairs & Vector512.Create(0xFu)) << 4) | (pairs >>> 16);
                    Vector512<byte> narrowed = Vector512.Narrow(Vector512.Narrow(bytes, Vector512<uint>.Zero), Vector512<ushort>.Zero);
                    narrowed.GetLower().GetLower().Store(packed + i / 2);
                }
            }
            else if (Vector256.IsHardwareAccelerated)
            {
                for (; i + 16 <= blockEnd; i += 16)
                {
                    Vector256<int> first = SimdBlockEncoder.Codes8(input + i, inverse, thresholds, thresholdSpan.Length, magnitudeCodes);
                    Vector256<int> second = SimdBlockEncoder.Codes8(input + i + 8, inverse, thresholds, thresholdSpan.Length, magnitudeCodes);
                    Vector256<uint> pairs = Vector256.Narrow(first, second).AsUInt32();
                    Vector256<uint> bytes = ((pairs & Vector256.Create(0xFu)) << 4) | (pairs >>> 16);
                    Vector256<byte> narrowed = Vector256.Narrow(Vector256.Narrow(bytes, Vector256<uint>.Zero), Vector256<ushort>.Zero);
                    narrowed.GetLower().GetLower().Store(packed + i / 2);
                }
            }
            for (; i < blockEnd; i++)
            {
                int code = book.Encode(input[i] * inverse);
                byte* target = packed + i / 2;
                *target = (i & 1) == 0 ? (byte)((code << 4) | zeroCode) : (byte)((*target & 0xF0) | code);
            }
        }
    }
}
