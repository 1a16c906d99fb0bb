using QuantPeft.Trainers.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Tests.Model;

public class ReferenceParityTests
{
    private static readonly long[,] Batch = { { 3, 17, 0, 31, 9 }, { 5, 5, 22, 1, 30 } };

    [Theory]
    [InlineData(false, false, AttentionImplementation.Fused)]
    [InlineData(false, false, AttentionImplementation.Eager)]
    [InlineData(true, false, AttentionImplementation.Fused)]
    [InlineData(false, true, AttentionImplementation.Eager)]
    [InlineData(true, true, AttentionImplementation.Fused)]
    public void Logits_MatchLoopByLoopReference_InFloat32(bool tied, bool bias, AttentionImplementation attention)
    {
        var spec = TinyModels.Llama(tied, bias);
        var checkpoint = TinyModels.RandomCheckpoint(spec, seed: 7);
        using var model = TinyModels.Build(spec, checkpoint, ScalarType.Float32, attention);
        var reference = new ReferenceDecoder(spec, checkpoint.Data);

        using var ids = TinyModels.Ids(Batch);
        using var logits = model.call(ids);                       // (2, 5, 32)
        Assert.Equal(new long[] { 2, 5, 32 }, logits.shape);
        var actual = logits.data<float>().ToArray();
        double maxDiff = 0, maxAbs = 0;
        for (int b = 0; b < 2; b++)
        {
            var expected = reference.Logits(Enumerable.Range(0, 5).Select(t => Batch[b, t]).ToArray());
            for (int t = 0; t < 5; t++)
                for (int v = 0; v < 32; v++)
                {
                    double e = expected[t][v];
                    maxAbs = Math.Max(maxAbs, Math.Abs(e));
                    maxDiff = Math.Max(maxDiff, Math.Abs(e - actual[(b * 5 + t) * 32 + v]));
                }
        }
        Assert.True(maxAbs > 0.5, $"logits too small to be a meaningful comparison: max |logit| {maxAbs}");
        Assert.True(maxDiff < 1e-4, $"max |model − reference| = {maxDiff}");
    }

    [Fact]
    public void Bf16Logits_StayCloseToReference()
    {
        var spec = TinyModels.Llama();
        var checkpoint = TinyModels.RandomCheckpoint(spec, seed: 3);
        using var model = TinyModels.Build(spec, checkpoint, ScalarType.BFloat16);
        var reference = new ReferenceDecoder(spec, checkpoint.Data);
        using var ids = TinyModels.Ids(Batch);
        using var logits = model.call(ids);
        Assert.Equal(ScalarType.BFloat16, logits.dtype);
        using var f = logits.to_type(ScalarType.Float32);
        var actual = f.data<float>().ToArray();
        var expected = reference.Logits(Enumerable.Range(0, 5).Select(t => Batch[0, t]).ToArray());
        double maxDiff = 0;
        for (int t = 0; t < 5; t++)
            for (int v = 0; v < 32; v++)
                maxDiff = Math.Max(maxDiff, Math.Abs(expected[t][v] - actual[t * 32 + v]));
        // bf16 keeps 8 significant bits: weights, activations and every op output are rounded to ~0.4 %.
        Assert.True(maxDiff < 0.15, $"max |bf16 model − reference| = {maxDiff}");
    }

    [Fact]
    public void EarlierPositions_DoNotSeeLaterTokens()
    {
        var spec = TinyModels.Llama();
        using var model = TinyModels.Build(spec, TinyModels.RandomCheckpoint(spec, 11));
        using var a = model.call(TinyModels.Ids(new long[,] { { 1, 2, 3, 4, 5 } }));
        using var b = model.call(TinyModels.Ids(new long[,] { { 1, 2, 3, 9, 20 } }));
        using var prefixA = a.narrow(1, 0, 3);
        using var prefixB = b.narrow(1, 0, 3);
        Assert.True(prefixA.eq(prefixB).all().item<bool>());
        using var lastA = a.narrow(1, 4, 1);
        using var lastB = b.narrow(1, 4, 1);
        Assert.False(lastA.allclose(lastB));
    }
}
