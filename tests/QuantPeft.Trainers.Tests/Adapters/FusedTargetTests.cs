using QuantPeft.Formats.HuggingFace;
using QuantPeft.Trainers.Adapters;
using QuantPeft.Trainers.Tests.Model;

namespace QuantPeft.Trainers.Tests.Adapters;

/// <summary>Adapter targets on Phi-3, whose checkpoint (and PEFT) has one qkv_proj and one gate_up_proj per block.</summary>
public class FusedTargetTests
{
    private static readonly ModelSpec Phi3 = ModelConfigReader.Read(FamilyParityTests.Folder("phi3"));
    private static readonly ModelSpec Qwen3 = ModelConfigReader.Read(FamilyParityTests.Folder("qwen3"));

    [Fact]
    public void AllLinear_IsPhi3sFourProjections()
    {
        Assert.Equal(["qkv_proj", "o_proj", "gate_up_proj", "down_proj"], ModelAdapters.ForModel(["all-linear"], Phi3));
        Assert.Equal(ModelAdapters.AllLinear, ModelAdapters.ForModel(["all-linear"], Qwen3));
    }

    [Fact]
    public void AllOfAFusedGroup_BecomesTheFusedProjection()
    {
        Assert.Equal(["qkv_proj", "o_proj"], ModelAdapters.ForModel(["q,k,v,o"], Phi3));
        Assert.Equal(["qkv_proj", "gate_up_proj"], ModelAdapters.ForModel(["qkv_proj,gate,up"], Phi3));
    }

    [Fact]
    public void PartOfAFusedGroup_IsRefusedNamingTheFusedProjection()
    {
        var e = Assert.Throws<AdapterException>(() => ModelAdapters.ForModel(["q,v"], Phi3));
        Assert.Contains("--targets", e.Message);
        Assert.Contains("qkv_proj", e.Message);
        e = Assert.Throws<AdapterException>(() => ModelAdapters.ForModel(["up"], Phi3));
        Assert.Contains("gate_up_proj", e.Message);
    }

    [Fact]
    public void FusedNames_OnAFamilyWithoutThem_AreRefused()
    {
        var e = Assert.Throws<AdapterException>(() => ModelAdapters.ForModel(["qkv_proj"], Qwen3));
        Assert.Contains("qkv_proj", e.Message);
        Assert.Contains("qwen3", e.Message);
    }
}
