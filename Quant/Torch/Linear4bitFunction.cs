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
/// <see cref="QuantizedTensor"/> is saved for backward: the backward pass decodes W again (trading one
/// decode for <c>out · in · 2</c> bytes that would otherwise stay alive from forward to backward). Both passes
/// decode block-aligned weights slab by slab into a reused buffer (see <see cref="Linear4bit"/>).
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
        var x = input.to(computeType);
        if (!weight.RowAligned)
        {
            var w = weight.Dequantize(computeType, chunkRows); // (out, in), freed when the scope ends
            return torch.nn.functional.linear(x, w, bias?.to(computeType)).MoveToOuterDisposeScope();
        }
        // Row slabs of W: y[..., r0:r1] = x · W[r0:r1]ᵀ. Each output still sums over all of `in`, and the
        // slab buffer (chunkRows · in values) is reused, so no full-size weight is ever allocated.
        var y = torch.empty([.. x.shape[..^1], weight.Rows], computeType, x.device);
        var x2 = x.reshape(-1, weight.Columns);
        var y2 = y.view(-1, weight.Rows);
        long slab = Math.Min(chunkRows, weight.Rows);
        lock (DecodeWorkspace.Gate)
        {
            var scales = weight.ScalesForDecode();
            var buffer = DecodeWorkspace.Rent(slab, weight.Columns, computeType, x.device);
            for (long r0 = 0; r0 < weight.Rows; r0 += slab)
            {
                using var inner = torch.NewDisposeScope();
                long rows = Math.Min(slab, weight.Rows - r0);
                var w = buffer.narrow(0, 0, rows);
                weight.DecodeRows(r0, rows, w, scales);
                y2.narrow(1, r0, rows).copy_(x2.matmul(w.t()));
            }
        }
        if (bias is not null) y.AddInPlace(bias.to(computeType));
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
        BackwardHandles.ReleaseEarlier();

        using var scope = torch.NewDisposeScope();
        var g = gradOutput.to(computeType);
        Tensor gradInput;
        if (!weight.RowAligned)
        {
            var w = weight.Dequantize(computeType, chunkRows);
            // grad_input = grad_out · W: (..., out) · (out, in) → (..., in)
            gradInput = g.matmul(w).to(inputType).MoveToOuterDisposeScope();
        }
        else
        {
            // Column slabs of W: grad_input[..., c0:c1] = grad_out · W[:, c0:c1], each summing over all of `out`.
            var g2 = g.reshape(-1, weight.Rows);
            var result = torch.empty([g2.shape[0], weight.Columns], computeType, g.device);
            long slab = SlabColumns(weight, chunkRows);
            lock (DecodeWorkspace.Gate)
            {
                var scales = weight.ScalesForDecode();
                for (long c0 = 0; c0 < weight.Columns; c0 += slab)
                {
                    using var inner = torch.NewDisposeScope();
                    long cols = Math.Min(slab, weight.Columns - c0);
                    // [Rows, cols] from the start of the shared buffer: contiguous whatever cols is.
                    var w = DecodeWorkspace.Rent(weight.Rows, cols, computeType, g.device);
                    weight.DecodeColumns(c0, cols, w, scales);
                    result.narrow(1, c0, cols).copy_(g2.matmul(w));
                }
            }
            gradInput = result.view([.. g.shape[..^1], weight.Columns]).to(inputType).MoveToOuterDisposeScope();
        }
        Tensor? gradBias = null;
        if (biasGrad)
        {
            var biasType = (ScalarType)ctx.get_data("biasType");
            gradBias = g.reshape(-1, g.shape[^1]).sum(dim: 0).to(biasType).MoveToOuterDisposeScope();
        }
        gradOutput.Dispose();
        // One slot per apply() argument; the non-tensor ones (weight, dtype, chunk rows) get none.
        return BackwardHandles.Returning([gradInput, gradBias!, null!, null!, null!]);
    }

    // Columns per backward slab: about chunkRows · in values (the forward slab size), whole blocks.
    private static long SlabColumns(QuantizedTensor weight, long chunkRows)
    {
        long target = Math.Max(1, chunkRows * weight.Columns / weight.Rows);
        long blocks = Math.Max(1, target / weight.BlockSize);
        return Math.Min(weight.Columns, blocks * weight.BlockSize);
    }
}
