using QuantPeft.Quant.Torch;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Quant.Tests.Torch;

/// <summary>
/// The held-Scalar helpers compute what the arithmetic says, by hand-worked values, and keep the dtype rules the
/// callers rely on: integer tensors stay integer under the <c>long</c> overloads (the LQ-LoRA bit packing), floats
/// stay in their own precision.
/// </summary>
public sealed class ScalarOpsTests
{
    private static long[] Longs(Tensor t) => t.data<long>().ToArray();
    private static float[] Floats(Tensor t) => t.to(ScalarType.Float32).data<float>().ToArray();

    [Fact]
    public void IntegerOverloadsKeepIntegerTensorsInteger()
    {
        using var scope = NewDisposeScope();
        var x = tensor(new long[] { -7, -1, 0, 5, 9 });
        Assert.Equal(ScalarType.Int64, x.Mul(256L).dtype);
        Assert.Equal([-1792L, -256, 0, 1280, 2304], Longs(x.Mul(256L)));
        Assert.Equal([-6L, 0, 1, 6, 10], Longs(x.Add(1L)));
        Assert.Equal([-8L, -2, -1, 4, 8], Longs(x.Sub(1L)));
        // Python's convention, which the 3-bit packing's arithmetic assumes: floor division and a non-negative remainder.
        Assert.Equal([-4L, -1, 0, 2, 4], Longs(x.FloorDivide(2)));
        Assert.Equal([1L, 1, 0, 1, 1], Longs(x.Remainder(2)));
        Assert.Equal([0L, 0, 0, 5, 9], Longs(x.Clamp(0L, 255L)));
        var b = tensor(new byte[] { 3, 15 });
        Assert.Equal(ScalarType.Byte, b.Mul(16L).dtype);
        Assert.Equal(new byte[] { 48, 240 }, b.Mul(16L).data<byte>().ToArray());
    }

    [Fact]
    public void FloatingOverloadsComputeInTheTensorsPrecision()
    {
        using var scope = NewDisposeScope();
        var x = tensor(new[] { -2f, 0.5f, 3f });
        Assert.Equal([-1f, 0.25f, 1.5f], Floats(x.Mul(0.5)));
        Assert.Equal([-4f, 1f, 6f], Floats(x.Div(0.5)));
        Assert.Equal([-1.75f, 0.75f, 3.25f], Floats(x.Add(0.25)));
        Assert.Equal([4f, 0.25f, 9f], Floats(x.Square()));
        Assert.Equal([-1f, 0.5f, 1f], Floats(x.Clamp(-1.0, 1.0)));
        Assert.Equal([0.5f, 0.5f, 3f], Floats(x.ClampMin(0.5)));
        Assert.Equal([false, false, true], x.Gt(0.5).data<bool>().ToArray());
        Assert.Equal([true, false, false], x.Lt(0).data<bool>().ToArray());
        Assert.Equal([false, true, true], x.Ge(0.5).data<bool>().ToArray());
        var bf = x.to(ScalarType.BFloat16);
        Assert.Equal(ScalarType.BFloat16, bf.Mul(1.0 / 3).dtype);   // a double never promotes a bf16 tensor
        var y = tensor(new[] { 1f, 2f, 4f });
        Assert.Equal([-1f, 2.5f, 7f], Floats(x.Add(y)));
        Assert.Equal([-1.5f, 1.5f, 5f], Floats(x.Add(y, 0.5)));   // x + 0.5·y
    }

    [Fact]
    public void InPlaceOverloadsWriteIntoTheirTensorAndReturnIt()
    {
        using var scope = NewDisposeScope();
        var x = tensor(new[] { 1f, -2f, 3f });
        Assert.Same(x, x.MulInPlace(2.0));
        Assert.Same(x, x.AddInPlace(tensor(new[] { 1f, 1f, 1f })));
        Assert.Same(x, x.SubInPlace(0.5));
        Assert.Same(x, x.ClampInPlace(-2.0, 5.0));
        Assert.Equal([2.5f, -2f, 5f], Floats(x));   // (2, −4, 6) + 1 − 0.5 = (2.5, −3.5, 6.5), clamped to [−2, 5]
        Assert.Equal([6.25f, 4f, 25f], Floats(x.SquareInPlace()));
    }

    [Fact]
    public void FillsMasksAndRanges()
    {
        using var scope = NewDisposeScope();
        var like = zeros(2, 2, dtype: ScalarType.Int64);
        Assert.Equal([-100L, -100, -100, -100], Longs(ScalarOps.FullLike(like, -100L).view(-1)));
        Assert.Equal(ScalarType.Int64, ScalarOps.FullLike(like, -100L).dtype);
        var mask = tensor(new[] { true, false, true });
        var filled = zeros(3).MaskedFill(mask, double.NegativeInfinity);
        Assert.Equal([float.NegativeInfinity, 0f, float.NegativeInfinity], Floats(filled));
        var r = ScalarOps.Arange(4, ScalarType.Float32, CPU);
        Assert.Equal(ScalarType.Float32, r.dtype);
        Assert.Equal([0f, 1f, 2f, 3f], Floats(r));
        Assert.Equal([false, true, false, false], tensor(new long[] { 1, -100, 3, 4 }).Eq(-100).data<bool>().ToArray());
        Assert.Equal([true, false, true, true], tensor(new long[] { 1, -100, 3, 4 }).Ne(-100).data<bool>().ToArray());
    }
}
