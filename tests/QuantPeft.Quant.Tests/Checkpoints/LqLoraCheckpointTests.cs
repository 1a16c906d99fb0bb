using System.Runtime.InteropServices;
using QuantPeft.Quant.Checkpoints;
using QuantPeft.Quant.Codecs;
using QuantPeft.Quant.LqLora;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Quant.Tests.Checkpoints;

[Collection("Torch")]
public class LqLoraCheckpointTests
{
    private const int Rank = 8, Iterations = 8;

    // Σ ‖W − Ŵ‖² over all projections, in float64, from the original f32 weights.
    private static double SquaredError(LqModelFolder model, Func<string, float[]> reconstruct) =>
        model.Original.Keys.Where(QuantizeOptions.IsLinearProjection).Sum(name =>
        {
            float[] w = model.Original[name], r = reconstruct(name);
            double s = 0;
            for (int i = 0; i < w.Length; i++) s += (double)(w[i] - r[i]) * (w[i] - r[i]);
            return s;
        });

    private static bool Same(Tensor a, Tensor b)
    {
        if (a.dtype != b.dtype || !a.shape.SequenceEqual(b.shape)) return false;
        using var eq = a.eq(b).all();
        return eq.item<bool>();
    }

    private static float[] ToArray(Tensor t)
    {
        using var c = t.to(ScalarType.Float32).contiguous();
        return c.data<float>().ToArray();
    }

    [Fact]
    public void Serializer_RoundTripsCodesScalesAndFactorsExactly()
    {
        var config = new LqQuantConfig(3, 3, SecondLevelStorage.BFloat16, 32, 16);
        using var w = torch.randn([64, 256], generator: new torch.Generator(9));
        using var d = LqStoredDecomposition.Create(w, config, 5, 6, 1, "m.weight");
        var pieces = LqLoraSerializer.ToTensors(d.Quantized, d.L1, d.L2).ToDictionary(p => p.NameSuffix);
        // 16384 codes · 3 bits and 512 scale codes · 3 bits, packed.
        Assert.Equal(6144, pieces["weight"].Data.Length);
        Assert.Equal(192, pieces["weight.absmax"].Data.Length);
        Assert.Equal("BF16", pieces["weight.nested_absmax"].DType);
        var (q, l1, l2) = LqLoraSerializer.FromTensors("m", pieces);
        using var _q = q; using var _1 = l1; using var _2 = l2;
        Assert.True(Same(q.Codes, d.Quantized.Codes.view(-1)));
        Assert.True(Same(q.ScaleCodes, d.Quantized.ScaleCodes));
        Assert.True(Same(q.SecondLevel, d.Quantized.SecondLevel));
        Assert.Equal(d.Quantized.Offset, q.Offset);
        Assert.True(Same(l1, d.L1) && Same(l2, d.L2));
        using var a = q.Dequantize();
        using var b = d.Quantized.Dequantize();
        Assert.True(Same(a, b));
    }

    [Fact]
    public void Checkpoint_ReadsBackTheCodesAndFactorsThatWereWritten()
    {
        using var model = new LqModelFolder();
        string output = model.Sibling("lq");
        var options = new LqLoraOptions(2.75, Rank, maxIterations: Iterations);
        LqLoraSummary summary = LqLoraCheckpointWriter.Run(model.Path, output, options);
        Assert.Equal(7, summary.Matrices.Count);

        using var ckpt = LqLoraCheckpoint.Open(output);
        Assert.Equal(Rank, ckpt.Rank);
        Assert.Equal(2.75, ckpt.BitsBudget);
        int index = 0;
        foreach (string name in model.Original.Keys.Where(QuantizeOptions.IsLinearProjection))
        {
            using var p = ckpt.Read(name);
            Assert.Equal(summary.Matrices[name].Config, p.Quantized.Config);
            Assert.Equal(new long[] { model.Original[name].Length / p.L2.shape[1], Rank }, p.L1.shape);
            // The same decomposition recomputed here (same seed: options.Seed + index in checkpoint order).
            int i = ckpt.Tensors.Tensors.Where(t => QuantizeOptions.IsLinearProjection(t.Name)).Select(t => t.Name).ToList().IndexOf(name);
            using var w = torch.tensor(model.Original[name], p.Quantized.Shape);
            using var d = LqStoredDecomposition.Create(w, p.Quantized.Config, Rank, Iterations, options.Seed + (ulong)i, name);
            Assert.True(Same(p.Quantized.Codes, d.Quantized.Codes), name);
            Assert.True(Same(p.Quantized.ScaleCodes, d.Quantized.ScaleCodes), name);
            Assert.True(Same(p.L1, d.L1) && Same(p.L2, d.L2), name);
            // The error recorded in config.json is the error of what the file holds.
            using var r = p.Reconstruct();
            float[] rec = ToArray(r), orig = model.Original[name];
            double err = Math.Sqrt(orig.Select((v, k) => (double)(v - rec[k]) * (v - rec[k])).Sum());
            Assert.Equal(summary.Matrices[name].Error, err, err * 1e-3);
            index++;
        }
        Assert.Equal(7, index);
        // Untouched tensors are copied byte for byte.
        Assert.Equal(MemoryMarshal.AsBytes(model.Original["model.embed_tokens.weight"].AsSpan()).ToArray(),
            ckpt.Tensors.ReadBytes("model.embed_tokens.weight"));
    }

    [Theory]
    [InlineData(2.75)]
    [InlineData(3.5)]
    public void Allocation_NeverExceedsTheBudget(double budget)
    {
        using var model = new LqModelFolder();
        string output = model.Sibling("lq");
        LqLoraCheckpointWriter.Run(model.Path, output, new LqLoraOptions(budget, 4, maxIterations: 4));
        using var ckpt = LqLoraCheckpoint.Open(output);
        // Recount from the per-matrix configs: bits/weight = b + 8/64 + 32/(64·256).
        double bits = 0, weights = 0;
        foreach (var (name, c) in ckpt.Configs)
        {
            double perWeight = c.Bits + 8.0 / 64 + 32.0 / (64 * 256);
            bits += perWeight * model.Original[name].Length;
            weights += model.Original[name].Length;
        }
        Assert.True(bits / weights <= budget, $"{bits / weights} > {budget}");
        Assert.Equal(bits / weights, ckpt.AverageBits, 12);
        // The budget buys more than the cheapest configuration (NF2) everywhere.
        Assert.True(bits / weights > 2 + 8.0 / 64 + 32.0 / (64 * 256));
    }

    [Fact]
    public void AtTheSameQuantizedBits_LqLoraErrorIsBelowPlainNormalFloat()
    {
        using var model = new LqModelFolder();
        var nf3 = new LqQuantConfig(3, 8, SecondLevelStorage.Float32, 64, 256);
        // Budget = exactly the storage of plain NF3 with these scales (3.127 bits/weight).
        string output = model.Sibling("lq3");
        LqLoraCheckpointWriter.Run(model.Path, output, new LqLoraOptions(nf3.BitsPerParameter, Rank, maxIterations: Iterations));
        using (var ckpt = LqLoraCheckpoint.Open(output))
        {
            double lq = SquaredError(model, name => { using var p = ckpt.Read(name); using var r = p.Reconstruct(); return ToArray(r); });
            double plain = SquaredError(model, name =>
            {
                using var w = torch.tensor(model.Original[name]);
                using var q = LqQuantizer.FakeQuantize(w, nf3);
                return ToArray(q);
            });
            Assert.True(lq < 0.5 * plain, $"LQ-LoRA {lq} vs plain NF3 {plain}");
        }

        // Budget 4.127 against QLoRA's NF4 with double quantization from the bitsandbytes-layout codec (4.127 bits too).
        string output4 = model.Sibling("lq4");
        LqLoraCheckpointWriter.Run(model.Path, output4, new LqLoraOptions(LqQuantConfig.Nf4DoubleQuant.BitsPerParameter, Rank, maxIterations: Iterations));
        using var ckpt4 = LqLoraCheckpoint.Open(output4);
        Assert.True(ckpt4.AverageBits <= 4.127);
        double lq4 = SquaredError(model, name => { using var p = ckpt4.Read(name); using var r = p.Reconstruct(); return ToArray(r); });
        double nf4 = SquaredError(model, name =>
        {
            float[] w = model.Original[name];
            PackedFourBitTensor q = FourBitBufferQuantizer.Quantize(w, [w.Length], FourBitType.Nf4, 64, doubleQuant: true);
            var back = new float[w.Length];
            FourBitBufferQuantizer.Dequantize(q, back);
            return back;
        });
        Assert.True(lq4 < 0.5 * nf4, $"LQ-LoRA {lq4} vs bitsandbytes NF4+DQ {nf4}");
    }

    [Theory]
    [InlineData(1.5, 8, 64, "--bits 1.5")]
    [InlineData(9.0, 8, 64, "--bits 9")]
    [InlineData(3.0, 0, 64, "--rank 0")]
    [InlineData(3.0, 8, 100, "--blocksize 100")]
    public void BadOptionsNameTheFlag(double bits, int rank, int blockSize, string expected)
    {
        var e = Assert.Throws<QuantInputException>(() => new LqLoraOptions(bits, rank, blockSize));
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void RankAboveAMatrixAndMissingConfigFailWithoutOutput()
    {
        using var model = new LqModelFolder();
        string output = model.Sibling("out");
        var e = Assert.Throws<QuantInputException>(() => LqLoraCheckpointWriter.Run(model.Path, output, new LqLoraOptions(3, 129)));
        Assert.Contains("--rank 129", e.Message);
        Assert.False(Directory.Exists(output));

        using var bare = new LqModelFolder(writeConfig: false);
        string output2 = bare.Sibling("out");
        e = Assert.Throws<QuantInputException>(() => LqLoraCheckpointWriter.Run(bare.Path, output2, new LqLoraOptions(3, 4)));
        Assert.Contains("config.json", e.Message);
        Assert.False(Directory.Exists(output2));
    }
}
