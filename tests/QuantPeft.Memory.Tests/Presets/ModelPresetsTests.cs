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
    public void ParameterCountMatchesPublished(string name, long expected) =>
        Assert.Equal(expected, ModelPresets.Get(name).ParameterCount);

    [Fact]
    public void EveryNamedPresetResolves()
    {
        Assert.Equal(13, ModelPresets.Names.Count);
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
    public void UnknownPresetListsTheNames()
    {
        var e = Assert.Throws<PlanningException>(() => ModelPresets.Get("llama-9-1b"));
        Assert.Contains("llama-9-1b", e.Message);
        foreach (string name in ModelPresets.Names) Assert.Contains(name, e.Message);
    }
}
