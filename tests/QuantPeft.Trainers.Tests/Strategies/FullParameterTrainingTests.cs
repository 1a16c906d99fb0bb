using QuantPeft.Memory.Planning;
using QuantPeft.Optimizers;
using QuantPeft.Optimizers.GaLore;
using QuantPeft.Trainers.Adapters;
using QuantPeft.Trainers.Model;
using QuantPeft.Trainers.Recipes;
using QuantPeft.Trainers.Strategies;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Tests.Strategies;

[Collection(nameof(QuantPeft.Trainers.Tests.Recipes.ExactReplay))]
public class FullParameterTrainingTests
{
    private static Optimizer Build(string name, CausalLm model)
    {
        var trainable = FullParameterTraining.Prepare(model);
        var galore = name.Contains("galore") ? new GaLoreOptions(Rank: 4, UpdateProjGap: 2) : null;
        return OptimizerFactory.Create(name, FullParameterTraining.Groups(trainable, new ParamGroupOptions(Lr: 1e-2, WeightDecay: 0.01), galore));
    }

    [Theory]
    [InlineData("adamw")]
    [InlineData("adamw-8bit")]
    [InlineData("galore-8bit")]
    public void LayerwiseUpdatesInBackwardEqualTheGlobalStep(string optimizerName)
    {
        // Two identical models; one steps after backward, the other steps each projection inside backward.
        using var global = StrategyTestModels.DenseBf16(StrategyTestModels.Spec(layers: 2));
        using var layerwise = StrategyTestModels.DenseBf16(StrategyTestModels.Spec(layers: 2));
        using var globalOptimizer = Build(optimizerName, global);
        using var layerwiseOptimizer = Build(optimizerName, layerwise);
        var hook = FullParameterTraining.AttachInBackward(layerwise, layerwiseOptimizer);

        for (int step = 0; step < 3; step++)
        {
            StrategyTestModels.Backward(global, seed: step);
            globalOptimizer.Step();
            globalOptimizer.ZeroGrad();

            StrategyTestModels.Backward(layerwise, seed: step);
            // Inside backward every projection weight was updated and kept no gradient; the rest still has one.
            foreach (var (name, p) in layerwise.named_parameters())
                Assert.Equal(!FullParameterTraining.IsProjectionWeight(name), p.grad is not null);
            layerwiseOptimizer.Step();
            layerwiseOptimizer.ZeroGrad();
        }
        Assert.Equal(3 * 2 * 7, hook.UpdatesApplied);
        var reference = global.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        Assert.All(layerwise.named_parameters(), p => Assert.True(StrategyTestModels.Same(p.parameter, reference[p.name]), p.name));
        using var untrained = StrategyTestModels.DenseBf16(StrategyTestModels.Spec(layers: 2));
        Assert.False(StrategyTestModels.Same(reference["model.layers.1.mlp.down_proj.weight"],
            untrained.named_parameters().First(p => p.name == "model.layers.1.mlp.down_proj.weight").parameter));
    }

    [Fact]
    public void GaLoreGroupsProjectTheProjectionWeightsOnly()
    {
        using var model = StrategyTestModels.DenseBf16(StrategyTestModels.Spec(layers: 2));
        var trainable = FullParameterTraining.Prepare(model);
        Assert.All(model.parameters(), p => Assert.True(p.requires_grad));
        var groups = FullParameterTraining.Groups(trainable, new ParamGroupOptions(), new GaLoreOptions(Rank: 4));
        Assert.Equal(["galore", "other"], groups.Select(g => g.Name));
        Assert.Equal(2 * 7, groups[0].Parameters.Count);
        Assert.All(groups[0].Parameters, p => Assert.Matches(@"^model\.layers\.\d\.(self_attn|mlp)\.\w+_proj\.weight$", p.Name));
        Assert.Equal(["model.embed_tokens.weight", "model.layers.0.input_layernorm.weight", "model.layers.0.post_attention_layernorm.weight",
            "model.layers.1.input_layernorm.weight", "model.layers.1.post_attention_layernorm.weight", "model.norm.weight", "lm_head.weight"],
            groups[1].Parameters.Select(p => p.Name));
    }

    [Fact]
    public void AQuantizedBaseCannotBeTrainedInPlace()
    {
        var spec = StrategyTestModels.Spec(layers: 1);
        using var model = new CausalLm(spec, new DecoderOptions
        {
            ComputeDType = ScalarType.BFloat16,
            LinearFactory = BaseWeights.Factory(WeightFormat.Nf4, doubleQuant: true, ScalarType.BFloat16),
        });
        var e = Assert.Throws<StrategyException>(() => FullParameterTraining.Prepare(model));
        Assert.StartsWith("model.layers.0.self_attn.q_proj: full-parameter training needs a dense bf16 projection", e.Message);
    }

    [Fact]
    public void SavedModelFolderReloadsToTheTrainedLogits()
    {
        using var dir = new TempDir();
        var spec = StrategyTestModels.Spec(layers: 2);
        using var model = StrategyTestModels.DenseBf16(spec);
        using (var optimizer = Build("adamw", model))
        {
            StrategyTestModels.Backward(model, seed: 1);
            optimizer.Step();
        }
        string source = dir.File("source");
        Directory.CreateDirectory(source);
        File.WriteAllText(Path.Combine(source, "tokenizer.json"), "{\"marker\": 1}");
        FullModelSaver.Save(model, source, dir.File("out"));
        Assert.Equal("{\"marker\": 1}", File.ReadAllText(dir.File("out/tokenizer.json")));
        Assert.Empty(Directory.GetDirectories(dir.Path, ".out*"));

        using var ids = tensor(new long[] { 1, 5, 9, 30, 2 }, [1, 5]);
        using var reloaded = ModelFolder.Load(dir.File("out"), ModelFolder.ReadSpec(dir.File("out")), new DecoderOptions
        {
            ComputeDType = ScalarType.BFloat16,
            LinearFactory = BaseWeights.Factory(WeightFormat.Bf16, doubleQuant: false, ScalarType.BFloat16),
        });
        using (no_grad())
        {
            using var expected = model.forward(ids);
            using var actual = reloaded.forward(ids);
            Assert.True(StrategyTestModels.Same(actual, expected));
        }
    }
}
