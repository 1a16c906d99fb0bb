using QuantPeft.Memory.Planning;
using QuantPeft.Memory.Planning.Methods;
using QuantPeft.Trainers.Adapters;
using QuantPeft.Trainers.Adapters.Methods;
using QuantPeft.Trainers.Model;
using QuantPeft.Trainers.Tests.Model;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Tests.Adapters;

/// <summary>The two halves of every adapter method agree: the planner's cost formulas count what the trainer's layer allocates.</summary>
public class AdapterRegistryTests
{
    private const int Rank = 4;

    public static TheoryData<TrainingMethod> AdapterMethods() => [.. AdapterRegistry.All.Select(d => d.Method)];

    [Fact]
    public void EveryAdapterMethodThePlannerKnowsHasExactlyOneTrainerDescriptor()
    {
        var planned = MethodRegistry.All.Where(d => d.IsAdapter).Select(d => d.Method).Order().ToList();
        var trained = AdapterRegistry.All.Select(d => d.Method).Order().ToList();
        Assert.Equal(planned, trained);
    }

    // TinyModels.Llama: hidden 16, intermediate 24, q 16 wide, k and v 8 wide; every projection of both layers is a target.
    [Theory]
    [MemberData(nameof(AdapterMethods))]
    public void TheCostFormulasCountTheTensorsEachLayerAllocates(TrainingMethod method)
    {
        var descriptor = AdapterRegistry.Of(method);
        var cost = MethodRegistry.Of(method).Adapter!;
        var spec = TinyModels.Llama();
        LinearFactory factory = BaseWeights.Factory(WeightFormat.Bf16, false, ScalarType.Float32);
        if (descriptor.LoadInit is not null) factory = SvdInitOnLoad.Wrap(factory, method, Rank, 2.0, ModelAdapters.AllLinear);
        using var model = new CausalLm(spec, new DecoderOptions { ComputeDType = ScalarType.Float32, LinearFactory = factory });
        model.LoadWeights(TinyModels.RandomCheckpoint(spec, 5));
        using var shared = descriptor.CreateShared(model, ModelAdapters.AllLinear, Rank, seed: 3);
        // A data-driven init (EVA, LoRA-GA) reads a few token batches first; EVA may move rank between targets.
        var factors = descriptor.DataInit?.Invoke(new DataInitRequest(model, ModelAdapters.AllLinear, new LoraOptions(Rank, 8), new TokenInitBatches(model, 2, 2, 8, seed: 4)));
        var adapters = ModelAdapters.Attach(model, method, new LoraOptions(Rank, 8), ModelAdapters.AllLinear, seed: 1, shared, factors);
        foreach (var f in factors?.Values ?? []) f.Dispose();
        Assert.Equal(2 * 7, adapters.Count);
        foreach (var a in adapters)
        {
            int rank = a.Layer is LoraLinear lora ? lora.Options.Rank : Rank;
            var target = new AdapterTarget(a.Layer.BaseLayer.InFeatures, a.Layer.BaseLayer.OutFeatures, rank, SharesInput: false);
            var tensors = a.Layer.AdapterTensors().Values.ToList();
            var trainable = tensors.Where(t => t is Parameter && t.requires_grad).Select(t => t.numel()).Order().ToList();
            long frozen = tensors.Where(t => !(t is Parameter && t.requires_grad)).Sum(t => t.numel());
            Assert.Equal(cost.Trainable(target).Order().ToList(), trainable);
            Assert.Equal(cost.Frozen(target), frozen);
            Assert.Equal(trainable.Sum(), a.Layer.TrainableParameterCount);
        }
        if (shared is not null)
            Assert.Equal(cost.Shared!(24, 24, Rank), shared.Tensors.Values.Sum(t => t.numel()));   // the widest input and output are 24 (down, gate/up)
        else
            Assert.Null(cost.Shared);
    }
}
