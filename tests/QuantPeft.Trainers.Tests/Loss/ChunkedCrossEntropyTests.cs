using QuantPeft.Formats;
using QuantPeft.Trainers.Loss;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Tests.Loss;

public class ChunkedCrossEntropyTests
{
    private const int N = 10, H = 6, V = 13;

    private static (Tensor Hidden, Tensor Weight, Tensor Labels) Inputs(ScalarType dtype, int seed)
    {
        var gen = new Generator((ulong)seed);
        var hidden = randn([2, N / 2, H], generator: gen).to_type(dtype).requires_grad_();
        var weight = randn([V, H], generator: gen).to_type(dtype).requires_grad_();
        var labels = tensor(new long[] { 3, -100, 12, 0, 7, -100, -100, 5, 1, 12 }, [2, N / 2]);
        return (hidden, weight, labels);
    }

    private static (float Loss, float[] GradHidden, float[] GradWeight) Run(Func<Tensor, Tensor, Tensor, Tensor> loss, ScalarType dtype)
    {
        var (hidden, weight, labels) = Inputs(dtype, 42);
        using var value = loss(hidden, weight, labels);
        value.backward();
        var result = (value.to_type(ScalarType.Float32).item<float>(),
            hidden.grad!.to_type(ScalarType.Float32).data<float>().ToArray(),
            weight.grad!.to_type(ScalarType.Float32).data<float>().ToArray());
        hidden.Dispose(); weight.Dispose(); labels.Dispose();
        return result;
    }

    private static Tensor Plain(Tensor hidden, Tensor weight, Tensor labels) =>
        nn.functional.cross_entropy(nn.functional.linear(hidden, weight).to_type(ScalarType.Float32).reshape(-1, V),
            labels.reshape(-1), ignore_index: -100);

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(1024)]
    public void Float32_LossAndGradients_EqualPlainCrossEntropy(int chunk)
    {
        var expected = Run(Plain, ScalarType.Float32);
        var actual = Run((h, w, l) => ChunkedCrossEntropy.Compute(h, w, l, chunkSize: chunk), ScalarType.Float32);
        Assert.Equal(expected.Loss, actual.Loss, 5);
        AssertClose(expected.GradHidden, actual.GradHidden, 1e-6);
        AssertClose(expected.GradWeight, actual.GradWeight, 1e-6);
        Assert.All(actual.GradHidden.Chunk(H).Where((_, row) => row is 1 or 5 or 6), masked => Assert.All(masked, v => Assert.Equal(0f, v)));
    }

    [Fact]
    public void Bf16_LossAndGradients_AgreeWithinBf16Rounding()
    {
        var expected = Run(Plain, ScalarType.BFloat16);
        var actual = Run((h, w, l) => ChunkedCrossEntropy.Compute(h, w, l, chunkSize: 3), ScalarType.BFloat16);
        Assert.Equal(expected.Loss, actual.Loss, 2);
        AssertClose(expected.GradHidden, actual.GradHidden, expected.GradHidden.Max(Math.Abs) / 64);
        AssertClose(expected.GradWeight, actual.GradWeight, expected.GradWeight.Max(Math.Abs) / 64);
    }

    [Fact]
    public void Divisor_ReplacesTheCountOfUnmaskedTokens()
    {
        var mean = Run((h, w, l) => ChunkedCrossEntropy.Compute(h, w, l, chunkSize: 4), ScalarType.Float32);
        var summedOver20 = Run((h, w, l) => ChunkedCrossEntropy.Compute(h, w, l, chunkSize: 4, divisor: 20), ScalarType.Float32);
        // 7 labels are counted: loss/20 = mean·7/20.
        Assert.Equal(mean.Loss * 7 / 20, summedOver20.Loss, 5);
        AssertClose(mean.GradWeight.Select(g => g * 7 / 20).ToArray(), summedOver20.GradWeight, 1e-6);
    }

    [Fact]
    public void UniformLogits_GiveLogV()
    {
        using var hidden = zeros(4, H);
        using var weight = randn(V, H);
        using var labels = tensor(new long[] { 0, 5, 12, -100 });
        using var loss = ChunkedCrossEntropy.Compute(hidden, weight, labels, chunkSize: 2);
        Assert.Equal(Math.Log(V), loss.item<float>(), 5);
    }

    [Fact]
    public void AllMasked_GivesZeroLossAndZeroGradients()
    {
        using var hidden = randn(3, H).requires_grad_();
        using var weight = randn(V, H).requires_grad_();
        using var labels = full(3, -100L, dtype: ScalarType.Int64);
        using var loss = ChunkedCrossEntropy.Compute(hidden, weight, labels);
        loss.backward();
        Assert.Equal(0f, loss.item<float>());
        Assert.Equal(0f, hidden.grad!.abs().max().item<float>());
    }

    [Fact]
    public void FrozenHead_GetsNoGradient()
    {
        using var hidden = randn(3, H).requires_grad_();
        using var weight = randn(V, H);
        using var labels = tensor(new long[] { 1, 2, 3 });
        using var loss = ChunkedCrossEntropy.Compute(hidden, weight, labels);
        loss.backward();
        Assert.NotNull(hidden.grad);
        Assert.Null(weight.grad);
    }

    [Fact]
    public void LabelOutsideVocabulary_IsRejectedNamingIt()
    {
        using var hidden = randn(2, H);
        using var weight = randn(V, H);
        using var labels = tensor(new long[] { 1, 13 });
        var ex = Assert.Throws<QuantPeftException>(() => ChunkedCrossEntropy.Compute(hidden, weight, labels));
        Assert.Equal("labels: expected token ids in [0, 13) or -100; found 13", ex.Message);
    }

    [Fact]
    public void ShiftLabels_MovesTargetsOneLeftAndMasksTheLastPosition()
    {
        using var labels = tensor(new long[] { 1, 2, 3, -100, 5, 6 }, [2, 3]);
        using var shifted = ChunkedCrossEntropy.ShiftLabels(labels);
        Assert.Equal(new long[] { 2, 3, -100, 5, 6, -100 }, shifted.data<long>().ToArray());
    }

    private static void AssertClose(float[] expected, float[] actual, double tolerance)
    {
        Assert.Equal(expected.Length, actual.Length);
        double diff = expected.Zip(actual, (a, b) => Math.Abs(a - b)).Max();
        Assert.True(diff <= tolerance, $"max diff {diff} > {tolerance}");
    }
}
