using QuantPeft.Quant.LqLora;
using QuantPeft.Quant.Torch;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Adapters;

/// <summary>
/// <c>y = x · Qᵀ</c> for a frozen <see cref="LqQuantizedMatrix"/>: Q is decoded slab by slab of rows in forward
/// and again in backward, so no dense copy of the weight lives from forward to backward. Only the input is a
/// graph input. Arguments to <c>apply</c>: input, weight, compute dtype, slab rows.
/// </summary>
internal sealed class LqLinearFunction : torch.autograd.SingleTensorFunction<LqLinearFunction>
{
    /// <inheritdoc />
    public override string Name => nameof(LqLinearFunction);

    /// <inheritdoc />
    public override Tensor forward(torch.autograd.AutogradContext ctx, params object[] vars)
    {
        var input = (Tensor)vars[0];
        var weight = (LqQuantizedMatrix)vars[1];
        var computeType = (ScalarType)vars[2];
        long slab = (long)vars[3];
        ctx.save_data("weight", weight);
        ctx.save_data("computeType", computeType);
        ctx.save_data("slab", slab);
        ctx.save_data("inputType", input.dtype);

        using var scope = torch.NewDisposeScope();
        var x2 = input.to(computeType).reshape(-1, weight.Columns);
        var y2 = torch.empty([x2.shape[0], weight.Rows], computeType, input.device);
        var buffer = torch.empty([Math.Min(slab, weight.Rows), weight.Columns], computeType, input.device);
        for (long r0 = 0; r0 < weight.Rows; r0 += slab)
        {
            using var inner = torch.NewDisposeScope();
            long rows = Math.Min(slab, weight.Rows - r0);
            var w = buffer.narrow(0, 0, rows);
            weight.DecodeRows(r0, rows, w);
            y2.narrow(1, r0, rows).copy_(x2.matmul(w.t()));
        }
        return y2.view([.. input.shape[..^1], weight.Rows]).MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    public override List<Tensor> backward(torch.autograd.AutogradContext ctx, Tensor gradOutput)
    {
        var weight = (LqQuantizedMatrix)ctx.get_data("weight");
        var computeType = (ScalarType)ctx.get_data("computeType");
        long slab = (long)ctx.get_data("slab");
        var inputType = (ScalarType)ctx.get_data("inputType");
        BackwardHandles.ReleaseEarlier();

        using var scope = torch.NewDisposeScope();
        // grad_input = grad_out · Q = Σ over row slabs of grad_out[..., r0:r1] · Q[r0:r1, :].
        var g2 = gradOutput.to(computeType).reshape(-1, weight.Rows);
        var result = torch.zeros([g2.shape[0], weight.Columns], computeType, gradOutput.device);
        var buffer = torch.empty([Math.Min(slab, weight.Rows), weight.Columns], computeType, gradOutput.device);
        for (long r0 = 0; r0 < weight.Rows; r0 += slab)
        {
            using var inner = torch.NewDisposeScope();
            long rows = Math.Min(slab, weight.Rows - r0);
            var w = buffer.narrow(0, 0, rows);
            weight.DecodeRows(r0, rows, w);
            result.AddInPlace(g2.narrow(1, r0, rows).matmul(w));
        }
        var gradInput = result.view([.. gradOutput.shape[..^1], weight.Columns]).to(inputType).MoveToOuterDisposeScope();
        gradOutput.Dispose();   // see BackwardHandles
        return BackwardHandles.Returning([gradInput, null!, null!, null!]);
    }
}
