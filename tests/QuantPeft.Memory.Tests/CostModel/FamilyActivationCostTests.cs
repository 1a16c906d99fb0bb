using QuantPeft.Memory.CostModel;
using QuantPeft.Memory.Planning;
using QuantPeft.Memory.Presets;

namespace QuantPeft.Memory.Tests.CostModel;

/// <summary>The activation bytes the newer families add to a Llama block, worked out by hand per token and layer.</summary>
public sealed class FamilyActivationCostTests
{
    [Fact]
    public void Qwen3_KeepsTheQkNormInputs_InFloat32()
    {
        // qwen3-8b: 32 query heads and 8 kv heads of 128 → q 4096, kv 1024; fp32 inputs: 4 · (4096 + 1024) = 20,480.
        var spec = ModelPresets.Get("qwen3-8b");
        long bytes = ActivationCost.FamilyExtraBytesPerToken(spec, new LayerShape(4096, 1024, 32, 12288), new Workload(Seq: 2048), 4, fused: true);
        Assert.Equal(20_480, bytes);
    }

    [Fact]
    public void Gemma2_AddsTwoNorms_AndTheSoftcappedScoresWhenEager()
    {
        // gemma-2-2b: two more fp32 norm inputs 2 · 4 · 2304 = 18,432; tanh output per head and key 2 · 8 · 2048 = 32,768.
        var spec = ModelPresets.Get("gemma-2-2b");
        var shape = new LayerShape(2048, 1024, 8, 9216);
        Assert.Equal(18_432 + 32_768, ActivationCost.FamilyExtraBytesPerToken(spec, shape, new Workload(Seq: 2048), 4, fused: false));
    }

    [Fact]
    public void Llama_AddsNothing()
    {
        var spec = ModelPresets.Get("llama-3.2-1b");
        Assert.Equal(0, ActivationCost.FamilyExtraBytesPerToken(spec, new LayerShape(2048, 512, 32, 8192), new Workload(), 4, fused: true));
    }

    [Fact]
    public void FinalLogitSoftcap_KeepsTheTanhOutputUnchunked_AndOneChunkOfSlopesChunked()
    {
        // 2 × 1024 tokens × 256,000 vocab = 524,288,000 logits: unchunked 2 bytes each; chunked in 8, 4 bytes of one chunk.
        Assert.Equal(1_048_576_000L, ActivationCost.SoftcapLogitsBytes(256_000, 2048, chunked: false, chunks: 8));
        Assert.Equal(262_144_000L, ActivationCost.SoftcapLogitsBytes(256_000, 2048, chunked: true, chunks: 8));
    }
}
