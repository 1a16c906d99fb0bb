using QuantPeft.Memory.Planning;
using QuantPeft.Quant.Codecs;
using QuantPeft.Quant.Torch;
using QuantPeft.Trainers.Export;
using QuantPeft.Trainers.Model;
using QuantPeft.Trainers.Recipes;
using QuantPeft.Trainers.Tests.Recipes;
using QuantPeft.Trainers.Training;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Tests.Export;

/// <summary>
/// <c>--merge-onto dequantized</c>: a QLoRA adapter merged into the dequantized 4-bit base reproduces the trained model
/// (4-bit base + adapter) up to bf16 rounding; merged into the original weights it does not, by the quantization error.
/// </summary>
public class MergeOntoDequantizedTests(ITestOutputHelper output)
{
    private static Tensor Logits(CausalLm model) => TrainedAdapterMergeTests.Logits(model);

    [Fact]
    public void TheDequantizedMergeIsTheTrainedModelAndTheOriginalMergeIsNot()
    {
        using var dir = new TempDir();
        string model = RecipeTests.WriteTinyModel(dir);
        var options = RecipeTests.Options(dir, model, steps: 8, trainRecords: 16) with { Weights = WeightFormat.Nf4, DoubleQuant = true };
        string adapter = dir.File("adapter");
        Tensor trained;
        using (var recipe = new FinetuneRecipe(options))
        {
            recipe.Setup();
            using (var log = new MetricsWriter(dir.File("metrics.jsonl"))) recipe.Train(log);
            recipe.Save(adapter);
            trained = Logits(recipe.Model).DetachFromDisposeScope();
        }
        using var _ = trained;
        MergedModelExport.Merge(adapter, model, dir.File("onto-dq"), 1L << 30, new MergeBase(FourBitType.Nf4, DoubleQuant: true));
        MergedModelExport.Merge(adapter, model, dir.File("onto-orig"), 1L << 30);
        float Error(string folder)
        {
            using var m = ModelFolder.Load(folder, ModelFolder.ReadSpec(folder), new DecoderOptions { ComputeDType = ScalarType.BFloat16 });
            using var logits = Logits(m);
            return (logits - trained).abs().mean().item<float>();
        }
        float dequantized = Error(dir.File("onto-dq")), original = Error(dir.File("onto-orig"));
        output.WriteLine($"mean |logit - trained|: merged onto the dequantized NF4 base {dequantized:F5}, onto the original bf16 {original:F5}");
        // Measured 0.0084 (the bf16 rounding of W + ΔW, as in every merge) against 0.0205 (that plus the NF4 quantization
        // error the adapter was trained around); the bound asks for half.
        Assert.True(dequantized * 2 < original, $"dequantized {dequantized} vs original {original}");
    }
}
