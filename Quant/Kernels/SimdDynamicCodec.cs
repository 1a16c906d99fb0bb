using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using QuantPeft.Quant.Codecs;

namespace QuantPeft.Quant.Kernels;

/// <summary>8-bit dynamic-map encode/decode of a range of whole blocks.</summary>
internal static unsafe class SimdDynamicCodec
{
    public static void Encode(float* input, DynamicMap map, int blockSize, int start, int end, byte* codes, float* absmax)
    {
        BucketedThresholds buckets = map == DynamicMap.Signed ? BucketedThresholds.Signed : BucketedThresholds.Unsigned;
        for (int blockStart = start; blockStart < end; blockStart += blockSize)
        {
            int blockEnd = Math.Min(blockStart + blockSize, end);
            float scale = SimdBlockEncoder.AbsMax(input + blockStart, blockEnd - blockStart, blockStart);
            absmax[blockStart / blockSize] = scale;
            float inverse = 1f / scale;
            for (int i = blockStart; i < blockEnd; i++) codes[i] = (byte)buckets.Count(input[i] * inverse);
        }
    }

    public static void Decode(byte* codes, float* absmax, float* table, int blockSize, int start, int end, float* output)
    {
        for (int blockStart = start; blockStart < end; blockStart += blockSize)
        {
            int blockEnd = Math.Min(blockStart + blockSize, end);
            float scale = absmax[blockStart / blockSize];
            int i = blockStart;
            if (Avx2.IsSupported)
            {
                Vector256<float> scaleVector = Vector256.Create(scale);
                for (; i + 8 <= blockEnd; i += 8)
                {
                    Vector256<int> index = Avx2.ConvertToVector256Int32(Vector128.CreateScalar(*(ulong*)(codes + i)).AsByte());
                    (Avx2.GatherVector256(table, index, 4) * scaleVector).Store(output + i);
                }
            }
            for (; i < blockEnd; i++) output[i] = table[codes[i]] * scale;
        }
    }
}
