using QuantPeft.Formats.HuggingFace;
using QuantPeft.Memory.Planning;
using QuantPeft.Trainers.Adapters;
using QuantPeft.Trainers.Loss;
using QuantPeft.Trainers.Model;
using QuantPeft.Trainers.Tests.Model;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Tests.Strategies;

/// <summary>A 4-layer untied tiny llama on a dense bf16 base (what full-parameter methods load) and a loss step on it.</summary>
internal static class StrategyTestModels
{
    // H = 16, I = 24, 4 heads of 4, 2 KV heads: q, o 16×16; k, v 8×16; gate, up 24×16; down 16×24; two norms of 16.
    public const long LayerParameters = 256 + 128 + 128 + 256 + 3 * 384 + 2 * 16;   // 1952
    // Embedding 32×16, untied head 32×16, final norm 16.
    public const long AlwaysParameters = 512 + 512 + 16;                              // 1040

    public static ModelSpec Spec(int layers = 4) => new()
    {
        ModelType = "llama", NumLayers = layers, HiddenSize = 16, IntermediateSize = 24, NumHeads = 4, NumKvHeads = 2,
        VocabSize = 32, TieWordEmbeddings = false, RopeTheta = 10000, RmsNormEps = 1e-6, MaxPositionEmbeddings = 64,
    };

    public static CausalLm DenseBf16(ModelSpec spec, int seed = 3)
    {
        var model = new CausalLm(spec, new DecoderOptions
        {
            ComputeDType = ScalarType.BFloat16,
            LinearFactory = BaseWeights.Factory(WeightFormat.Bf16, doubleQuant: false, ScalarType.BFloat16),
        });
        model.LoadWeights(TinyModels.RandomCheckpoint(spec, seed));
        return model;
    }

    /// <summary>Exact equality of shape and every element.</summary>
    public static bool Same(Tensor a, Tensor b)
    {
        if (!a.shape.SequenceEqual(b.shape)) return false;
        using var eq = a.eq(b);
        using var all = eq.all();
        return all.item<bool>();
    }

    /// <summary>Forward + backward of the mean next-token loss on a fixed random batch.</summary>
    public static float Backward(CausalLm model, int seed)
    {
        using var scope = NewDisposeScope();
        var generator = new TorchSharp.torch.Generator((ulong)seed);
        var ids = randint(0, model.Spec.VocabSize, [2, 12], generator: generator);
        var loss = ChunkedCrossEntropy.Compute(model.Hidden(ids), model.LmHeadWeight, ids);
        loss.backward();
        return loss.item<float>();
    }
}
