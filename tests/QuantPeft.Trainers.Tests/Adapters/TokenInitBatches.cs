using QuantPeft.Trainers.Adapters.Methods;
using QuantPeft.Trainers.Loss;
using QuantPeft.Trainers.Model;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Tests.Adapters;

/// <summary>
/// Fixed random token micro-batches [rows, length] over a model's vocabulary, next-token labels, no padding; records
/// which micro-batches a data-driven initialisation read, so a test can rebuild what it saw.
/// </summary>
internal sealed class TokenInitBatches(CausalLm model, int count, int rows, int length, int seed) : IInitBatches
{
    private readonly long[][] _ids = Enumerable.Range(0, count).Select(i =>
    {
        var rng = new Random(seed + i);
        return Enumerable.Range(0, rows * length).Select(_ => (long)rng.Next(model.Spec.VocabSize)).ToArray();
    }).ToArray();

    public List<int> Read { get; } = [];

    public int Count => count;

    public Tensor Ids(int index) => tensor(_ids[index], [rows, length]);

    // Next-token labels; the last position of each row has none.
    public Tensor Labels(int index)
    {
        var labels = new long[rows * length];
        for (int r = 0; r < rows; r++)
            for (int t = 0; t < length; t++)
                labels[r * length + t] = t + 1 < length ? _ids[index][r * length + t + 1] : -100;
        return tensor(labels, [rows, length]);
    }

    /// <summary>The mean next-token loss over micro-batches 0 … <paramref name="of"/> − 1, micro-batch <paramref name="index"/>'s share.</summary>
    public Tensor Loss(int index, int of)
    {
        Read.Add(index);
        using var scope = NewDisposeScope();
        var hidden = model.Hidden(Ids(index));
        var loss = ChunkedCrossEntropy.Compute(hidden, model.LmHeadWeight, Labels(index), divisor: of * rows * (length - 1));
        return loss.MoveToOuterDisposeScope();
    }

    public void Forward(int index)
    {
        Read.Add(index);
        using var scope = NewDisposeScope();
        model.Hidden(Ids(index));
    }

    public Tensor RealTokens(int index) => ones(rows * length, ScalarType.Bool);
}
