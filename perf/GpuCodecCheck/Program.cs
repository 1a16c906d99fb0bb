using System.Diagnostics;
using QuantPeft.Quant.Codecs;
using QuantPeft.Quant.Kernels;

// Checks that the ILGPU kernels on the preferred accelerator (CUDA when present) produce the same bytes as the
// scalar reference and the SIMD CPU codec, on odd sizes with tails, and times them. Usage: GpuCodecCheck [n]
int n = args.Length > 0 ? int.Parse(args[0]) : 64 * 1024 * 1024 + 37;
var rng = new Random(7);
var input = new float[n];
for (int i = 0; i < n; i++)
    input[i] = (float)(Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble()));
input[5] = 0f; input[6] = -0f; input[7] = 1e-40f; // zero, negative zero, a subnormal
var bf16 = new ushort[n];
for (int i = 0; i < n; i++) bf16[i] = FloatBits.SingleToBFloat16(input[i]);

using var gpu = IlgpuCodec.CreatePreferred();
IBlockwiseCodec simd = SimdCodec.Instance;
IBlockwiseCodec reference = ReferenceCodec.Instance;
Console.WriteLine($"device: {gpu.DeviceName}; cuda={gpu.IsCuda}; n={n:N0}; cores={Environment.ProcessorCount}");
int failures = 0;
void Check(string what, bool equal) { Console.WriteLine($"{(equal ? "SAME" : "DIFF")}  {what}"); if (!equal) failures++; }
double Time(Action a, int reps = 5) { a(); var sw = Stopwatch.StartNew(); for (int r = 0; r < reps; r++) a(); return sw.Elapsed.TotalSeconds / reps; }

foreach (FourBitType type in new[] { FourBitType.Nf4, FourBitType.Fp4 })
foreach (int block in new[] { 64, 256 })
{
    int blocks = BlockSizes.BlockCount(n, block);
    var (pG, aG, pS, aS, pR, aR) = (new byte[(n + 1) / 2], new float[blocks], new byte[(n + 1) / 2], new float[blocks], new byte[(n + 1) / 2], new float[blocks]);
    gpu.QuantizeFourBit(input, type, block, pG, aG);
    simd.QuantizeFourBit(input, type, block, pS, aS);
    reference.QuantizeFourBit(input, type, block, pR, aR);
    Check($"{type} b{block} encode f32: gpu==reference", pG.AsSpan().SequenceEqual(pR) && aG.AsSpan().SequenceEqual(aR));
    Check($"{type} b{block} encode f32: simd==reference", pS.AsSpan().SequenceEqual(pR) && aS.AsSpan().SequenceEqual(aR));
    gpu.QuantizeFourBit(bf16, type, block, pG, aG);
    reference.QuantizeFourBit(bf16, type, block, pR, aR);
    Check($"{type} b{block} encode bf16: gpu==reference", pG.AsSpan().SequenceEqual(pR) && aG.AsSpan().SequenceEqual(aR));
    var (oG, oR) = (new float[n], new float[n]);
    gpu.DequantizeFourBit(pR, aR, type, block, oG);
    reference.DequantizeFourBit(pR, aR, type, block, oR);
    Check($"{type} b{block} decode f32: gpu==reference", oG.AsSpan().SequenceEqual(oR));
    var (hG, hR) = (new ushort[n], new ushort[n]);
    gpu.DequantizeFourBit(pR, aR, type, block, hG);
    reference.DequantizeFourBit(pR, aR, type, block, hR);
    Check($"{type} b{block} decode bf16: gpu==reference", hG.AsSpan().SequenceEqual(hR));
    if (type == FourBitType.Nf4 && block == 64)
    {
        long decodeBytes = pR.Length + aR.Length * 4L + n * 2L;
        long encodeBytes = n * 2L + pR.Length + aR.Length * 4L;
        double tg = Time(() => gpu.DequantizeFourBit(pR, aR, type, block, hG));
        double ts = Time(() => simd.DequantizeFourBit(pR, aR, type, block, hR));
        double eg = Time(() => gpu.QuantizeFourBit(bf16, type, block, pG, aG));
        double es = Time(() => simd.QuantizeFourBit(bf16, type, block, pS, aS));
        var copy = new byte[n * 2L]; var src = new byte[n * 2L];
        double tm = Time(() => src.AsSpan().CopyTo(copy));
        Console.WriteLine($"TIME nf4 b64 decode→bf16: gpu incl. transfers {decodeBytes / tg / 1e9:F2} GB/s ({tg * 1e3:F1} ms); simd {Environment.ProcessorCount} cores {decodeBytes / ts / 1e9:F2} GB/s ({ts * 1e3:F1} ms); memcpy {2.0 * src.Length / tm / 1e9:F2} GB/s");
        Console.WriteLine($"TIME nf4 b64 encode bf16: gpu incl. transfers {encodeBytes / eg / 1e9:F2} GB/s ({eg * 1e3:F1} ms); simd {encodeBytes / es / 1e9:F2} GB/s ({es * 1e3:F1} ms)");
    }
}
foreach (DynamicMap map in new[] { DynamicMap.Signed, DynamicMap.Unsigned })
{
    float[] x = map == DynamicMap.Signed ? input : input.Select(Math.Abs).ToArray();
    int blocks = BlockSizes.BlockCount(n, 256);
    var (cG, aG, cR, aR) = (new byte[n], new float[blocks], new byte[n], new float[blocks]);
    gpu.QuantizeDynamic(x, map, 256, cG, aG);
    reference.QuantizeDynamic(x, map, 256, cR, aR);
    Check($"dynamic8 {map} b256 encode: gpu==reference", cG.AsSpan().SequenceEqual(cR) && aG.AsSpan().SequenceEqual(aR));
    var (oG, oR) = (new float[n], new float[n]);
    gpu.DequantizeDynamic(cR, aR, map, 256, oG);
    reference.DequantizeDynamic(cR, aR, map, 256, oR);
    Check($"dynamic8 {map} b256 decode: gpu==reference", oG.AsSpan().SequenceEqual(oR));
}
Console.WriteLine($"{(failures == 0 ? "ALL SAME" : failures + " DIFFERENCES")}");
return failures == 0 ? 0 : 1;
