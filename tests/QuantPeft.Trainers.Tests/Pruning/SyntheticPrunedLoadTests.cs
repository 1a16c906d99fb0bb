using QuantPeft.Trainers.Model;
using QuantPeft.Trainers.Pruning;
using QuantPeft.Trainers.Tests.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Tests.Pruning;

public class SyntheticPrunedLoadTests
{
    [Theory]
    [InlineData(ScalarType.BFloat16)]
    [InlineData(ScalarType.Float32)]
    [InlineData(ScalarType.Float16)]
    public void SelectedRowsAndColumnsEqualTheCutFullTensor(ScalarType dtype)
    {
        var spec = TinyModels.Llama(bias: true);
        var source = new SyntheticTensorSource(spec, 4, "s", dtype);
        foreach (var t in spec.Tensors())
        {
            for (int dim = 0; dim < t.Shape.Length; dim++)
            {
                long[] keep = Enumerable.Range(0, (int)t.Shape[dim]).Where(i => i % 3 != 1).Select(i => (long)i).ToArray();
                Assert.True(source.TrySelect(t.Name, dim, keep, out var selected), t.Name);
                using var cut = selected!;
                using var full = source.Get(t.Name);
                using var index = tensor(keep);
                using var expected = full.index_select(dim, index);
                Assert.Equal(dtype, cut.dtype);
                Assert.True(expected.equal(cut).all().item<bool>(), $"{t.Name} dim {dim}");
            }
        }
    }

    [Fact]
    public void APrunedSyntheticLoadHandsOutTheSameTensorsWithOrWithoutSelection()
    {
        var spec = TinyModels.Llama();
        var synthetic = new SyntheticTensorSource(spec, 8, "s");
        var pruner = new LoramPruner(spec, 0.5, PruningCriterion.Random, seed: 3);
        var selecting = pruner.Apply(synthetic);
        var cutting = pruner.Apply(new PlainSource(synthetic));
        foreach (var name in synthetic.Names)
        {
            using var a = selecting.Get(name);
            using var b = cutting.Get(name);
            Assert.Equal(b.shape, a.shape);
            Assert.True(a.equal(b).all().item<bool>(), name);
        }
    }

    // Hides ISelectingTensorSource, so the pruner takes its generic path (full tensor, then index_select).
    private sealed class PlainSource(ITensorSource inner) : ITensorSource
    {
        public string Origin => inner.Origin;

        public IEnumerable<string> Names => inner.Names;

        public Tensor Get(string name) => inner.Get(name);
    }
}
