using System.Text.Json;
using QuantPeft.Memory.Planning;
using QuantPeft.Quant.LqLora;
using QuantPeft.Trainers.Adapters;
using QuantPeft.Trainers.Recipes;
using QuantPeft.Trainers.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Tests.Recipes;

public class LqLoraRecipeTests
{
    [Fact]
    public void LqLoraBaseLinearForwardAndInputGradientUseTheDecodedQ()
    {
        var config = new LqQuantConfig(3, 8, SecondLevelStorage.Float32, 64, 16);
        using var gen = new Generator(3);
        using var w = randn(new long[] { 48, 64 }, generator: gen);
        using var layer = new LqLoraBaseLinear(64, 48, config, ScalarType.Float32);
        layer.LoadTensor("weight", w);
        using var q = LqQuantizer.FakeQuantize(w, config);
        using (var dense = layer.DenseWeight(ScalarType.Float32)) Assert.True(dense.equal(q).all().item<bool>());
        using var x = randn(new long[] { 2, 5, 64 }, generator: gen).requires_grad_();
        using var gOut = randn(new long[] { 2, 5, 48 }, generator: gen);
        using var y = layer.forward(x);
        using (var expected = x.detach().matmul(q.t())) Assert.True(y.allclose(expected, rtol: 1e-5, atol: 1e-5));
        using (var loss = y.mul(gOut).sum()) loss.backward();   // d(loss)/dy = gOut
        using var expectedGrad = gOut.matmul(q);
        Assert.True(x.grad!.allclose(expectedGrad, rtol: 1e-5, atol: 1e-5));
        Assert.Equal(48L * 64 * 3 / 8 + 48 * 64 / 64 + 3 * 4 + 4, layer.StorageBytes);
    }

    [Fact]
    public void ThreeBitBudgetMixesNfWidthsStartsTheLoraAtL1L2AndTrains()
    {
        using var dir = new TempDir();
        string model = RecipeTests.WriteTinyModel(dir);
        var options = RecipeTests.Options(dir, model, steps: 12, trainRecords: 16) with { Weights = WeightFormat.LqLora, LqLoraBits = 3 };
        using var recipe = new FinetuneRecipe(options);
        recipe.Setup();
        var bases = recipe.Adapters.Select(a => (a.ModulePath, Base: (LqLoraBaseLinear)a.Layer.BaseLayer)).ToList();
        Assert.Equal(14, bases.Count);
        // NF3 alone costs 3 + 8/64 + 32/1024 bits: a 3-bit budget can only be met by moving some matrices to NF2.
        long numel = bases.Sum(b => b.Base.InFeatures * b.Base.OutFeatures);
        double average = bases.Sum(b => b.Base.Config.BitsPerParameter * b.Base.InFeatures * b.Base.OutFeatures) / numel;
        Assert.True(average <= 3.0, $"average {average}");
        Assert.Contains(bases, b => b.Base.Config.Bits == 2);

        // One target, decomposed independently from the checkpoint: the base holds exactly its Q and the LoRA starts at L1·L2.
        var (path, lq) = bases.First(b => b.ModulePath == "model.layers.1.mlp.down_proj");
        var layer = (LoraLinear)recipe.Adapters.First(a => a.ModulePath == path).Layer;
        using (var source = new SafetensorsModelSource(Path.Combine(model, ModelFolder.WeightsFileName)))
        using (var w = source.Get(path + ".weight"))
        using (var result = LqDecomposition.Decompose(w, lq.Config, options.Rank, LqLoraPlan.MaxIterations, seed: LqLoraPlan.SvdSeed))
        using (var stored = lq.DenseWeight(ScalarType.Float32))
        using (var start = layer.B.detach().matmul(layer.A.detach()).mul(options.Alpha / options.Rank))
        using (var l1l2 = result.L1.matmul(result.L2))
        {
            Assert.True(stored.equal(result.Quantized).all().item<bool>());
            Assert.True(start.allclose(l1l2, rtol: 1e-4, atol: 1e-5));
        }

        using (var log = new MetricsWriter(dir.File("metrics.jsonl"))) recipe.Train(log);
        var losses = File.ReadLines(dir.File("metrics.jsonl")).Select(l => JsonDocument.Parse(l).RootElement)
            .Where(e => e.TryGetProperty("loss", out _)).Select(e => e.GetProperty("loss").GetDouble()).ToList();
        Assert.True(losses.Skip(9).Average() < losses.Take(3).Average() - 1.0, string.Join(" ", losses.Select(l => l.ToString("F3"))));

        // The export is a rank-2r LoRA relative to the original W (like PiSSA's), so it loads into a plain LoRA run.
        recipe.Save(dir.File("adapter"));
        using var lora = new FinetuneRecipe(options with { Weights = WeightFormat.Bf16, Rank = 2 * options.Rank, Alpha = 2 * options.Alpha });
        lora.Setup();
        lora.LoadAdapter(dir.File("adapter"));
    }

    [Fact]
    public void LqLoraWithAnotherMethodOrAnImpossibleBudgetNamesTheFlag()
    {
        using var dir = new TempDir();
        string model = RecipeTests.WriteTinyModel(dir);
        var options = RecipeTests.Options(dir, model, steps: 1) with { Weights = WeightFormat.LqLora, LqLoraBits = 3 };
        var e = Assert.Throws<RecipeException>(() => new FinetuneRecipe(options with { Method = TrainingMethod.Dora }));
        Assert.StartsWith("--weights lq-lora:3", e.Message);
        using var recipe = new FinetuneRecipe(options with { LqLoraBits = 1.5 });
        e = Assert.Throws<RecipeException>(recipe.Setup);
        Assert.StartsWith("--weights lq-lora:1.5", e.Message);
    }
}
