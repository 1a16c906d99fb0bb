using static TorchSharp.torch;

namespace QuantPeft.Trainers.Adapters;

/// <summary>
/// A frozen base projection <c>y = x Wᵀ + b</c> that adapters wrap. Dense and quantized bases both
/// implement it, so every adapter works on either; only dense bases can absorb a merge.
/// </summary>
public interface IBaseLinear
{
    /// <summary>Input features (columns of W).</summary>
    long InFeatures { get; }

    /// <summary>Output features (rows of W).</summary>
    long OutFeatures { get; }

    /// <summary>The device the weight lives on; adapters put their own tensors there.</summary>
    Device Device { get; }

    /// <summary>The bias, or null.</summary>
    Tensor? Bias { get; }

    /// <summary>
    /// The effective weight [out, in] as a new tensor of <paramref name="dtype"/> that the caller disposes
    /// (a dequantized copy for quantized bases).
    /// </summary>
    Tensor DenseWeight(ScalarType dtype);

    /// <summary>
    /// Rows [<paramref name="start"/>, start + <paramref name="count"/>) of the effective weight as a new
    /// <c>[count, in]</c> tensor of <paramref name="dtype"/>, equal to the same rows of <see cref="DenseWeight"/>.
    /// </summary>
    /// <remarks>
    /// DoRA's row norms read the whole weight a slab at a time through this, so that no dense copy of a quantized
    /// matrix is ever alive. A base that cannot slice its storage by rows decodes the whole weight and cuts it.
    /// </remarks>
    Tensor DenseRows(long start, long count, ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        return DenseWeight(dtype).narrow(0, start, count).clone().MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Writes rows [<paramref name="start"/>, start + rows of <paramref name="destination"/>) of the effective weight into
    /// <paramref name="destination"/> (a contiguous <c>[rows, in]</c> float tensor), as <see cref="DenseRows"/> would return them.
    /// </summary>
    void CopyRowsInto(long start, Tensor destination)
    {
        using var rows = DenseRows(start, destination.shape[0], destination.dtype);
        destination.copy_(rows);
    }

    /// <summary><c>x Wᵀ</c> without the bias (DoRA rescales this part alone).</summary>
    Tensor ForwardNoBias(Tensor x);

    /// <summary>Whether <see cref="AddToWeight"/> is supported (dense bases only).</summary>
    bool SupportsMerge { get; }

    /// <summary>Adds <paramref name="delta"/> [out, in] to the weight in place (merge and unmerge).</summary>
    /// <exception cref="AdapterException">The base is quantized and cannot absorb a merge.</exception>
    void AddToWeight(Tensor delta);
}
