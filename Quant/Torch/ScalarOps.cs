using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Quant.Torch;

/// <summary>
/// Tensor arithmetic with numbers through native Scalars that stay reachable for the whole native call.
/// </summary>
/// <remarks>
/// TorchSharp converts a number to a native <see cref="Scalar"/> implicitly, and some of its own members do so inside
/// (the one-operand <c>add</c>, <c>square</c>, the operators that take a number). The converted object is left to the
/// finalizer, and nothing keeps it reachable while libtorch reads it, so a garbage collection triggered on another thread
/// (the peak probe's sampler, a data loader) can free it mid-call. That is libtorch's <c>toFloat</c> error (Scalar.h:140)
/// that aborted training runs. Every QuantPeft tensor op with a number goes through these helpers or a Scalar the caller
/// holds; a test reads the IL of every QuantPeft assembly and of TorchSharp to keep it so.
/// Integer overloads keep integer tensors integer, as TorchSharp's <c>long</c> conversion does; the <c>double</c> ones
/// promote integer tensors to floating point, as a Python float would.
/// </remarks>
public static class ScalarOps
{
    // Rooted for the life of the process: never finalized, and read-only, so every thread may pass them.
    private static readonly Scalar One = 1L.ToScalar();
    private static readonly Scalar Two = 2L.ToScalar();

    // The Scalar lives until op has returned, whatever op does with its handle.
    private static Tensor With(double value, Func<Scalar, Tensor> op)
    {
        using Scalar k = value.ToScalar();
        return op(k);
    }

    private static Tensor With(long value, Func<Scalar, Tensor> op)
    {
        using Scalar k = value.ToScalar();
        return op(k);
    }

    /// <summary><c>a + b</c>, a new tensor.</summary>
    public static Tensor Add(this Tensor a, Tensor b) => a.add(b, One);

    /// <summary><c>a += b</c>, in place; returns <paramref name="a"/>.</summary>
    public static Tensor AddInPlace(this Tensor a, Tensor b) => a.add_(b, One);

    /// <summary><c>a + alpha · b</c>, a new tensor.</summary>
    public static Tensor Add(this Tensor a, Tensor b, double alpha) => With(alpha, k => a.add(b, k));

    /// <summary><c>a += alpha · b</c>, in place; returns <paramref name="a"/>.</summary>
    public static Tensor AddInPlace(this Tensor a, Tensor b, double alpha) => With(alpha, k => a.add_(b, k));

    /// <summary><c>a + value</c>, a new tensor.</summary>
    public static Tensor Add(this Tensor a, double value) => With(value, k => a.add(k, One));

    /// <summary><c>a + value</c>, a new tensor; an integer tensor stays integer.</summary>
    public static Tensor Add(this Tensor a, long value) => With(value, k => a.add(k, One));

    /// <summary><c>a += value</c>, in place; returns <paramref name="a"/>.</summary>
    public static Tensor AddInPlace(this Tensor a, double value) => With(value, k => a.add_(k, One));

    /// <summary><c>a · value</c>, a new tensor.</summary>
    public static Tensor Mul(this Tensor a, double value) => With(value, k => a.mul(k));

    /// <summary><c>a · value</c>, a new tensor; an integer tensor stays integer.</summary>
    public static Tensor Mul(this Tensor a, long value) => With(value, k => a.mul(k));

    /// <summary><c>a *= value</c>, in place; returns <paramref name="a"/>.</summary>
    public static Tensor MulInPlace(this Tensor a, double value) => With(value, k => a.mul_(k));

    /// <summary><c>a *= value</c>, in place; an integer tensor stays integer. Returns <paramref name="a"/>.</summary>
    public static Tensor MulInPlace(this Tensor a, long value) => With(value, k => a.mul_(k));

    /// <summary><c>a / value</c>, a new tensor.</summary>
    public static Tensor Div(this Tensor a, double value) => With(value, k => a.div(k));

    /// <summary><c>a /= value</c>, in place; returns <paramref name="a"/>.</summary>
    public static Tensor DivInPlace(this Tensor a, double value) => With(value, k => a.div_(k));

    /// <summary><c>a − value</c>, a new tensor.</summary>
    public static Tensor Sub(this Tensor a, double value) => With(value, k => a.sub(k));

    /// <summary><c>a −= value</c>, in place; returns <paramref name="a"/>.</summary>
    public static Tensor SubInPlace(this Tensor a, double value) => With(value, k => a.sub_(k));

    /// <summary><c>a²</c> elementwise, a new tensor (TorchSharp's <c>square()</c> converts its 2 inside).</summary>
    public static Tensor Square(this Tensor a) => a.pow(Two);

    /// <summary><c>a − value</c>, a new tensor; an integer tensor stays integer.</summary>
    public static Tensor Sub(this Tensor a, long value) => With(value, k => a.sub(k));

    /// <summary><paramref name="a"/> clamped below at <paramref name="min"/>, a new tensor.</summary>
    public static Tensor ClampMin(this Tensor a, double min) => With(min, k => a.clamp_min(k));

    /// <summary><paramref name="a"/> clamped to [<paramref name="min"/>, <paramref name="max"/>], a new tensor.</summary>
    public static Tensor Clamp(this Tensor a, double min, double max)
    {
        using Scalar lo = min.ToScalar(), hi = max.ToScalar();
        return a.clamp(lo, hi);
    }

    /// <summary><paramref name="a"/> clamped to [<paramref name="min"/>, <paramref name="max"/>], a new tensor; an integer tensor stays integer.</summary>
    public static Tensor Clamp(this Tensor a, long min, long max)
    {
        using Scalar lo = min.ToScalar(), hi = max.ToScalar();
        return a.clamp(lo, hi);
    }

    /// <summary><paramref name="a"/> clamped to [<paramref name="min"/>, <paramref name="max"/>] in place; returns <paramref name="a"/>.</summary>
    public static Tensor ClampInPlace(this Tensor a, double min, double max)
    {
        using Scalar lo = min.ToScalar(), hi = max.ToScalar();
        return a.clamp_(lo, hi);
    }

    /// <summary>Elementwise <c>a &gt; value</c>, a boolean tensor.</summary>
    public static Tensor Gt(this Tensor a, double value) => With(value, k => a.gt(k));

    /// <summary>Elementwise <c>a &lt; value</c>, a boolean tensor.</summary>
    public static Tensor Lt(this Tensor a, double value) => With(value, k => a.lt(k));

    /// <summary>Elementwise <c>a ≥ value</c>, a boolean tensor.</summary>
    public static Tensor Ge(this Tensor a, double value) => With(value, k => a.ge(k));

    /// <summary>Elementwise <c>a == value</c>, a boolean tensor.</summary>
    public static Tensor Eq(this Tensor a, long value) => With(value, k => a.eq(k));

    /// <summary>Elementwise <c>a != value</c>, a boolean tensor.</summary>
    public static Tensor Ne(this Tensor a, long value) => With(value, k => a.ne(k));

    /// <summary>A tensor shaped like <paramref name="like"/> (and of its dtype and device) filled with <paramref name="value"/>.</summary>
    public static Tensor FullLike(Tensor like, double value) => With(value, k => full_like(like, k));

    /// <summary>A tensor shaped like <paramref name="like"/> (and of its dtype and device) filled with <paramref name="value"/>.</summary>
    public static Tensor FullLike(Tensor like, long value) => With(value, k => full_like(like, k));

    /// <summary>Elementwise <c>⌊a / value⌋</c>, a new tensor; an integer tensor stays integer.</summary>
    public static Tensor FloorDivide(this Tensor a, long value) => With(value, k => a.floor_divide(k));

    /// <summary>Elementwise <c>a mod value</c> (Python's sign convention), a new tensor; an integer tensor stays integer.</summary>
    public static Tensor Remainder(this Tensor a, long value) => With(value, k => a.remainder(k));

    /// <summary><c>a²</c> elementwise, in place; returns <paramref name="a"/>.</summary>
    public static Tensor SquareInPlace(this Tensor a) => a.pow_(Two);

    /// <summary><paramref name="a"/> with <paramref name="value"/> where <paramref name="mask"/> is true, a new tensor.</summary>
    public static Tensor MaskedFill(this Tensor a, Tensor mask, double value) => With(value, k => a.masked_fill(mask, k));

    /// <summary><c>0, 1, …, count − 1</c> as a 1-D tensor of <paramref name="dtype"/> on <paramref name="device"/>.</summary>
    public static Tensor Arange(long count, ScalarType dtype, Device device)
    {
        using Scalar start = 0L.ToScalar(), stop = count.ToScalar();
        return arange(start, stop, One, dtype, device);
    }
}
