using QuantPeft.Quant.Codecs;
using QuantPeft.Quant.LqLora;
using QuantPeft.Quant.Torch;
using TorchSharp;

namespace QuantPeft.Trainers.Model;

/// <summary>
/// One projection weight as a pre-quantized checkpoint stores it, handed to the module that keeps it without a
/// dense round trip (<see cref="IQuantizedLoadTarget"/>). The loader owns the object and disposes it after the
/// hand-over; a module that keeps a part takes it (<see cref="FourBitWeight.Take"/>) or copies it.
/// </summary>
public abstract class QuantizedWeight : IDisposable
{
    /// <summary>Sets the name and origin.</summary>
    protected QuantizedWeight(string name, string origin)
    {
        Name = name;
        Origin = origin;
    }

    /// <summary>The checkpoint name, <c>….weight</c>.</summary>
    public string Name { get; }

    /// <summary>The file it was read from (for error messages).</summary>
    public string Origin { get; }

    /// <summary>The dense shape [out, in] the weight stands for.</summary>
    public abstract long[] Shape { get; }

    /// <summary>How the weight is stored, for messages (<c>nf4</c>, <c>lq-lora NF3(…)</c>).</summary>
    public abstract string Describe();

    /// <inheritdoc />
    public abstract void Dispose();
}

/// <summary>A bitsandbytes 4-bit weight (NF4 or FP4, optionally double-quantized) as its codes and block scales.</summary>
public sealed class FourBitWeight : QuantizedWeight
{
    private QuantizedTensor? _value;

    /// <summary>Wraps <paramref name="value"/>, which this object owns until <see cref="Take"/>.</summary>
    public FourBitWeight(string name, string origin, QuantizedTensor value) : base(name, origin) => _value = value;

    /// <summary>The stored weight (still owned by this object).</summary>
    /// <exception cref="InvalidOperationException">It was taken already.</exception>
    public QuantizedTensor Value => _value ?? throw new InvalidOperationException($"'{Name}' was already taken");

    /// <inheritdoc />
    public override long[] Shape => Value.Shape.ToArray();

    /// <summary>Hands the stored weight over; the caller owns it from now on and this object no longer disposes it.</summary>
    public QuantizedTensor Take()
    {
        var value = Value;
        _value = null;
        return value;
    }

    /// <inheritdoc />
    public override string Describe() => (Value.QuantType == FourBitType.Nf4 ? "nf4" : "fp4") + (Value.IsNested ? " with double quantization" : "")
        + $" (blocksize {Value.BlockSize})";

    /// <inheritdoc />
    public override void Dispose() => _value?.Dispose();
}

/// <summary>
/// An LQ-LoRA projection: the quantized residual Q and the factors with <c>W ≈ Q + L1·L2</c> (L1 [out, r], L2 [r, in],
/// bfloat16), owned by this object.
/// </summary>
public sealed class LqLoraWeight : QuantizedWeight
{
    /// <summary>Takes ownership of Q and the factors.</summary>
    public LqLoraWeight(string name, string origin, LqCodes quantized, torch.Tensor l1, torch.Tensor l2) : base(name, origin)
    {
        Quantized = quantized;
        L1 = l1;
        L2 = l2;
    }

    /// <summary>Q in stored (unpacked) form.</summary>
    public LqCodes Quantized { get; }

    /// <summary>Left factor [out, r], bfloat16.</summary>
    public torch.Tensor L1 { get; }

    /// <summary>Right factor [r, in], bfloat16.</summary>
    public torch.Tensor L2 { get; }

    /// <inheritdoc />
    public override long[] Shape => Quantized.Shape;

    /// <inheritdoc />
    public override string Describe() => $"lq-lora {Quantized.Config} with rank-{L1.shape[1]} factors";

    /// <inheritdoc />
    public override void Dispose()
    {
        Quantized.Dispose();
        L1.Dispose();
        L2.Dispose();
    }
}
