using QuantPeft.Quant.Codecs;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace QuantPeft.Quant.Torch;

/// <summary>
/// A linear layer over a frozen 4-bit weight (QLoRA's base layer): <c>y = x · Wᵀ + b</c> computed in the
/// compute dtype, with W dequantized into a temporary on every forward and backward call.
/// </summary>
/// <remarks>
/// The layer owns its <see cref="QuantizedTensor"/> and keeps no dequantized copy between calls. When each row
/// is a whole number of blocks (<c>in % blockSize == 0</c>, true for every LLM projection) forward decodes W in
/// slabs of <c>chunkRows</c> rows and backward in slabs of about as many values of whole block columns, into one
/// reused buffer: the extra memory of a call is about <c>chunkRows · in · (sizeof(computeDtype) + 6)</c> bytes
/// plus the float32 block scales. Otherwise it dequantizes the whole weight (<c>out · in · sizeof(computeDtype)</c>)
/// plus the chunk temporaries of <see cref="QuantizedTensor.Dequantize"/>. Every output element still sums over
/// the full inner dimension, so results match a dense layer on the dequantized weight. The weight never
/// receives a gradient; the bias (if any) is a parameter whose <c>requires_grad</c> the caller chooses.
/// Moving the module with <c>to(device)</c> moves the quantized weight too; a dtype conversion applies to the
/// bias only (the 4-bit codes have no dtype to convert).
/// </remarks>
public sealed class Linear4bit : torch.nn.Module<Tensor, Tensor>
{
    private QuantizedTensor _weight;
    private Parameter? _bias;

    /// <summary>Wraps <paramref name="weight"/> (ownership passes to the layer) and an optional bias <c>[out]</c>.</summary>
    /// <param name="weight">The 4-bit weight <c>[out, in]</c>; disposed with the layer.</param>
    /// <param name="bias">Optional bias; copied into a parameter (frozen unless <paramref name="trainBias"/>).</param>
    /// <param name="computeDtype">The dtype of the matmul and of the output; bf16 by default.</param>
    /// <param name="trainBias">Whether the bias parameter requires a gradient.</param>
    /// <param name="chunkRows">Rows dequantized per pass (see <see cref="QuantizedTensor.Dequantize"/>).</param>
    /// <param name="name">The layer's name for error messages.</param>
    /// <exception cref="QuantInputException">The bias shape or the compute dtype does not fit.</exception>
    public Linear4bit(
        QuantizedTensor weight, Tensor? bias = null, ScalarType computeDtype = ScalarType.BFloat16,
        bool trainBias = false, long chunkRows = QuantizedTensor.DefaultChunkRows, string name = nameof(Linear4bit))
        : base(name)
    {
        if (computeDtype is not (ScalarType.BFloat16 or ScalarType.Float16 or ScalarType.Float32))
            throw new QuantInputException($"'{name}': compute dtype must be bfloat16, float16 or float32, got {computeDtype}.");
        if (bias is not null && (bias.dim() != 1 || bias.shape[0] != weight.Rows))
            throw new QuantInputException(
                $"'{name}': bias must have shape [{weight.Rows}], got [{string.Join(", ", bias.shape)}].");
        _weight = weight;
        ComputeDtype = computeDtype;
        ChunkRows = chunkRows;
        if (bias is not null)
            _bias = new Parameter(bias.detach().clone().to(weight.Device), requires_grad: trainBias);
        RegisterComponents();
    }

    /// <summary>Quantizes a dense weight (and copies its bias) into a new layer.</summary>
    public static Linear4bit Quantize(
        Tensor weight, Tensor? bias = null, FourBitType format = FourBitType.Nf4,
        int blockSize = FourBitQuantizer.DefaultBlockSize, bool doubleQuant = true,
        ScalarType computeDtype = ScalarType.BFloat16, string name = nameof(Linear4bit))
        => new(FourBitQuantizer.Quantize(weight, format, blockSize, doubleQuant, name), bias, computeDtype, name: name);

    /// <summary>The frozen 4-bit weight, owned by this layer.</summary>
    public QuantizedTensor Weight => _weight;

    /// <summary>The bias parameter, or null.</summary>
    public Parameter? Bias => _bias;

    /// <summary>The dtype of the matmul and of the output.</summary>
    public ScalarType ComputeDtype { get; }

    /// <summary>Rows dequantized per pass.</summary>
    public long ChunkRows { get; }

    /// <summary>Input features (<c>in</c>).</summary>
    public long InFeatures => _weight.Columns;

    /// <summary>Output features (<c>out</c>).</summary>
    public long OutFeatures => _weight.Rows;

    /// <summary><c>x · Wᵀ + b</c> for <c>x</c> of shape <c>(..., in)</c>; the output is <c>(..., out)</c> in the compute dtype.</summary>
    public override Tensor forward(Tensor input)
        => Linear4bitFunction.apply(input, _bias, _weight, ComputeDtype, ChunkRows);

    /// <summary>
    /// <c>x · Wᵀ (+ b)</c> through the same autograd function, for a caller that owns <paramref name="weight"/>
    /// itself (e.g. an adapter's frozen base): W is decoded in forward and again in backward, never kept.
    /// </summary>
    public static Tensor Apply(Tensor input, QuantizedTensor weight, Tensor? bias = null, ScalarType computeDtype = ScalarType.BFloat16,
        long chunkRows = QuantizedTensor.DefaultChunkRows)
        => Linear4bitFunction.apply(input, bias, weight, computeDtype, chunkRows);

    /// <inheritdoc />
    protected override void _toEpilog(ScalarType? dtype, Device? device, bool non_blocking)
    {
        base._toEpilog(dtype, device, non_blocking);
        if (device is null || (device.type == _weight.Device.type && device.index == _weight.Device.index)) return;
        var moved = _weight.to(device);
        _weight.Dispose();
        _weight = moved;
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _weight.Dispose();
            _bias?.Dispose();
        }
        base.Dispose(disposing);
    }
}
