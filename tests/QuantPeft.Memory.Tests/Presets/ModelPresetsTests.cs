using QuantPeft.Memory.Planning;
using QuantPeft.Memory.Presets;

namespace QuantPeft.Memory.Tests.Presets;

public sealed class ModelPresetsTests
{
    [Theory]
    // MEMORY-FACTS §8 / §6 (HF checkpoints and the LoRAM paper).
    [InlineData("llama-2-7b", 6_738_415_616L)]
    [InlineData("llama-2-13b", 13_015_864_320L)]
    [InlineData("llama-2-70b", 68_976_648_192L)]
    [InlineData("llama-3.1-70b", 70_553_706_496L)]
    // Published Hugging Face model cards / safetensors totals.
    [InlineData("llama-3-8b", 8_030_261_248L)]
    [InlineData("llama-3.1-8b", 8_030_261_248L)]
    [InlineData("mistral-7b", 7_241_732_096L)]
    [InlineData("tinyllama-1.1b", 1_100_048_384L)]
    [InlineData("qwen2.5-0.5b", 494_032_768L)]
    [InlineData("qwen2.5-7b", 7_615_616_512L)]
    [InlineData("qwen2.5-14b", 14_770_033_664L)]
    [InlineData("qwen2.5-32b", 32_763_876_352L)]
    [InlineData("qwen2.5-72b", 72_706_203_648L)]
    // Safetensors totals of the published checkpoints (tied embeddings counted once).
    [InlineData("llama-3.2-1b", 1_235_814_400L)]
    [InlineData("llama-3.2-3b", 3_212_749_824L)]
    [InlineData("qwen3-0.6b", 596_049_920L)]
    [InlineData("qwen3-4b", 4_022_468_096L)]
    [InlineData("qwen3-8b", 8_190_735_360L)]
    [InlineData("qwen3-14b", 14_768_307_200L)]
    [InlineData("qwen3-32b", 32_762_123_264L)]
    [InlineData("gemma-2-2b", 2_614_341_888L)]
    [InlineData("gemma-2-9b", 9_241_705_984L)]
    [InlineData("gemma-2-27b", 27_227_128_320L)]
    [InlineData("gemma-3-1b", 999_885_952L)]
    [InlineData("mistral-nemo-12b", 12_247_782_400L)]
    // Phi-3-mini: keras-hub's phi3_presets.py gives 3,821,079,552 for microsoft/Phi-3-mini-4k-instruct; Phi-3-medium-4k and
    // phi-4: the Hub's safetensors totals (13.96B, 14.66B).
    [InlineData("phi-3-mini", 3_821_079_552L)]
    [InlineData("phi-3-medium", 13_960_238_080L)]
    [InlineData("phi-4", 14_659_507_200L)]
    public void ParameterCountMatchesPublished(string name, long expected) =>
        Assert.Equal(expected, ModelPresets.Get(name).ParameterCount);

    [Fact]
    public void EveryNamedPresetResolves()
    {
        Assert.Equal(32, ModelPresets.Names.Count);
        foreach (string name in ModelPresets.Names) Assert.True(ModelPresets.Contains(name));
    }

    [Fact]
    public void QwenHasQkvBiasesAndTheSmallestTiesEmbeddings()
    {
        Assert.True(ModelPresets.Get("qwen2.5-7b").AttentionBias);
        Assert.True(ModelPresets.Get("qwen2.5-0.5b").TieWordEmbeddings);
        Assert.False(ModelPresets.Get("qwen2.5-72b").TieWordEmbeddings);
    }

    [Fact]
    public void NewerFamilies_CarryTheirArchitecturalFields()
    {
        var qwen3 = ModelPresets.Get("qwen3-32b");
        Assert.True(qwen3.QkNorm);
        Assert.Equal(128, qwen3.HeadDim);                       // 5120 / 64 would be 80
        Assert.False(qwen3.AttentionBias);
        var gemma2 = ModelPresets.Get("gemma-2-27b");
        Assert.Equal(1.0 / 12.0, gemma2.AttentionScale, 12);   // query_pre_attn_scalar 144, not head_dim 128
        Assert.Equal(4096, gemma2.WindowOf(0));
        Assert.Null(gemma2.WindowOf(1));
        Assert.Equal(30.0, gemma2.FinalLogitSoftcap);
        var gemma3 = ModelPresets.Get("gemma-3-27b");
        Assert.Equal([1024, 1024, 1024, 1024, 1024, null], Enumerable.Range(0, 6).Select(gemma3.WindowOf).ToArray());
        Assert.Null(gemma3.AttnLogitSoftcap);
        Assert.Equal(128, ModelPresets.Get("mistral-nemo-12b").HeadDim);   // 5120 / 32 would be 160
        Assert.True(ModelPresets.Get("llama-3.2-1b").TieWordEmbeddings);
        Assert.Equal(32.0, ModelPresets.Get("llama-3.2-3b").RopeScaling!.Factor);
        var phi4 = ModelPresets.Get("phi-4");
        Assert.True(phi4.FusedProjections);
        Assert.Equal(128, phi4.HeadDim);
        Assert.Null(phi4.WindowOf(0));
        Assert.Equal(2047, ModelPresets.Get("phi-3-mini").WindowOf(31));
        // One fused qkv_proj [q + 2 kv, h] and gate_up_proj [2 i, h] per layer, as the checkpoint stores them.
        var layer0 = phi4.Tensors().Where(t => t.Layer == 0 && t.Role == QuantPeft.Formats.HuggingFace.TensorRole.Linear).ToDictionary(t => t.Name, t => t.Shape);
        Assert.Equal([7680L, 5120L], layer0["model.layers.0.self_attn.qkv_proj.weight"]);
        Assert.Equal([35840L, 5120L], layer0["model.layers.0.mlp.gate_up_proj.weight"]);
        Assert.Equal(4, layer0.Count);
    }

    [Fact]
    public void UnknownPresetListsTheNames()
    {
        var e = Assert.Throws<PlanningException>(() => ModelPresets.Get("llama-9-1b"));
        Assert.Contains("llama-9-1b", e.Message);
        foreach (string name in ModelPresets.Names) Assert.Contains(name, e.Message);
    }

    [Fact]
    public void EveryPresetNamesTheHubRepositoryAnotherEngineLoads()
    {
        // A hand-off config without a model id cannot be run by the engine it is written for.
        var missing = ModelPresets.Names.Where(n => PresetHubIds.Get(n) is null).ToList();
        Assert.True(missing.Count == 0, "no Hub repository for: " + string.Join(", ", missing));
        Assert.All(ModelPresets.Names, n => Assert.Matches(@"^[\w.-]+/[\w.-]+$", PresetHubIds.Get(n)!));
    }
}
