using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.autograd;

namespace QuantPeft.Trainers.Model;

/// <summary>
/// Gradient checkpointing of one decoder block as a custom autograd function. Forward runs the block
/// without recording a graph and saves only the block's input (plus the small cos/sin tables);
/// backward runs the block again with grad enabled and differentiates that fresh graph. The block's
/// trainable parameters are passed as inputs of the function so their gradients flow through the
/// normal autograd edges (AccumulateGrad and any per-parameter hooks), and so the function still
/// takes part in backward when the block's input does not require grad (frozen embeddings, LoRA).
/// </summary>
/// <remarks>
/// TorchSharp's function node also allocates an uninitialised tensor shaped like the output (to
/// zero-fill gradients that never arrive); it is created inside <see cref="DecoderStack"/>'s dispose
/// scope and never written, so it does not add resident activations. The recomputation assumes the
/// block is deterministic (no dropout), which holds for these decoders.
/// </remarks>
public sealed class BlockCheckpoint : SingleTensorFunction<BlockCheckpoint>
{
    private const string LayerKey = "layer", ParamsKey = "params", InputGradKey = "input_requires_grad", SegmentsKey = "segments";

    /// <inheritdoc/>
    public override string Name => nameof(BlockCheckpoint);

    /// <summary>Runs <paramref name="layer"/> on x (B, T, H) with checkpointing.</summary>
    public static Tensor Run(DecoderLayer layer, Tensor x, Tensor cos, Tensor sin)
    {
        var trainable = layer.parameters().Where(p => p.requires_grad).ToArray();
        var args = new object[4 + trainable.Length];
        args[0] = layer;
        args[1] = x;
        args[2] = cos;
        args[3] = sin;
        trainable.CopyTo(args, 4);
        return apply(args);
    }

    /// <inheritdoc/>
    public override Tensor forward(AutogradContext ctx, params object[] vars)
    {
        var layer = (DecoderLayer)vars[0];
        var x = (Tensor)vars[1];
        var cos = (Tensor)vars[2];
        var sin = (Tensor)vars[3];
        ctx.save_for_backward([x, cos, sin]);
        ctx.save_data(LayerKey, layer);
        ctx.save_data(ParamsKey, vars.Skip(4).Cast<Tensor>().ToArray());
        ctx.save_data(InputGradKey, x.requires_grad);
        // A packed forward's segments are set only while the stack runs; the recomputation in backward sets them again.
        ctx.save_data(SegmentsKey, layer.SelfAttn.Segments!);
        return layer.call(x, cos, sin);   // autograd is off here: no block activations are kept
    }

    /// <inheritdoc/>
    public override List<Tensor> backward(AutogradContext ctx, Tensor gradOutput)
    {
        QuantPeft.Quant.Torch.BackwardHandles.ReleaseEarlier();
        using var scope = NewDisposeScope();
        var saved = ctx.get_saved_variables();
        var layer = (DecoderLayer)ctx.get_data(LayerKey);
        var parameters = (Tensor[])ctx.get_data(ParamsKey);
        bool inputRequiresGrad = (bool)ctx.get_data(InputGradKey);
        var segments = ctx.get_data(SegmentsKey) as PackedSegments;

        IList<Tensor> grads;
        Tensor? input = null;
        using (enable_grad())
        {
            input = saved[0].detach().requires_grad_(inputRequiresGrad);
            layer.SelfAttn.Segments = segments;
            Tensor output;
            try
            {
                output = layer.call(input, saved[1], saved[2]);
            }
            finally
            {
                layer.SelfAttn.Segments = null;
            }
            // The recomputed forward's short-lived tensors are freed by now; return their pages before the block's
            // backward allocates its own (no block boundary, hence no stack-level guard, lies between the two).
            if (layer.HeapRetentionLimit is { } limit) QuantPeft.Memory.Probes.NativeHeap.TrimIfRetainedAbove(limit);
            var wrt = new List<Tensor>(parameters.Length + 1);
            if (inputRequiresGrad) wrt.Add(input);
            wrt.AddRange(parameters);
            grads = grad([output], wrt, [gradOutput]);
        }

        var result = new List<Tensor> { null!, null!, null!, null! };
        int offset = 0;
        if (inputRequiresGrad) result[1] = grads[offset++].MoveToOuterDisposeScope();
        for (int i = 0; i < parameters.Length; i++)
            result.Add(grads[offset + i].MoveToOuterDisposeScope());
        gradOutput.Dispose();   // see BackwardHandles
        return QuantPeft.Quant.Torch.BackwardHandles.Returning(result);
    }
}
