using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Quant.Torch;

/// <summary>
/// The autograd function of <see cref="Linear4bit"/>: <c>y = x · Wᵀ + b</c> with W dequantized on the fly.
/// </summary>
/// <remarks>
/// Arguments to <c>apply</c>: input (Tensor), bias (Tensor or null), weight (<see cref="QuantizedTensor"/>),
/// compute dtype (<see cref="ScalarType"/>), chunk rows (long). Only the input and the bias are graph inputs;
/// the 4-bit weight is frozen, so no gradient is ever formed for it. Nothing but the reference to the
/// <see cref="QuantizedTensor"/> is saved for backward: the backward pass dequantizes W again (trading one
/// decode for <c>out · in · 2</c> bytes that would otherwise stay alive from forward to backward).
/// </remarks>
internal sealed class Linear4bitFunction : torch.autograd.SingleTensorFunction<Linear4bitFunction>
{
    /// <inheritdoc />
    public override string Name => nameof(Linear4bitFunction);

    /// <inheritdoc />
    public override Tensor forward(torch.autograd.AutogradContext ctx, params object[] vars)
    {
        var input = (Tensor)vars[0];
        var bias = vars[1] as Tensor;
        var weight = (QuantizedTensor)vars[2];
        var computeType = (ScalarType)vars[3];
        long chunkRows = (long)vars[4];
        ctx.save_data("weight", weight);
        ctx.save_data("computeType", computeType);
        ctx.save_data("chunkRows", chunkRows);
        ctx.save_data("inputType", input.dtype);
        ctx.save_data("biasType", bias?.dtype ?? ScalarType.Float32);
        ctx.save_data("biasGrad", bias is not null && bias.requires_grad);

        using var scope = torch.NewDisposeScope();
        var w = weight.Dequantize(computeType, chunkRows); // (out, in), freed when the scope ends
        var y = torch.nn.functional.linear(input.to(computeType), w, bias?.to(computeType));
        return y.MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    public override List<Tensor> backward(torch.autograd.AutogradContext ctx, Tensor gradOutput)
    {
        var weight = (QuantizedTensor)ctx.get_data("weight");
        var computeType = (ScalarType)ctx.get_data("computeType");
        long chunkRows = (long)ctx.get_data("chunkRows");
        var inputType = (ScalarType)ctx.get_data("inputType");
        bool biasGrad = (bool)ctx.get_data("biasGrad");

        using var scope = torch.NewDisposeScope();
        var g = gradOutput.to(computeType);
        var w = weight.Dequantize(computeType, chunkRows);
        // grad_input = grad_out · W: (..., out) · (out, in) → (..., in)
        var gradInput = g.matmul(w).to(inputType).MoveToOuterDisposeScope();
        Tensor? gradBias = null;
        if (biasGrad)
        {
            var biasType = (ScalarType)ctx.get_data("biasType");
            gradBias = g.reshape(-1, g.shape[^1]).sum(dim: 0).to(biasType).MoveToOuterDisposeScope();
        }
        // One slot per apply() argument; the non-tensor ones (weight, dtype, chunk rows) get none.
        return [gradInput, gradBias!, null!, null!, null!];
    }
}
