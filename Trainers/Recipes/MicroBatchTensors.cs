using QuantPeft.Trainers.Data;
using QuantPeft.Trainers.Model;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Recipes;

/// <summary>A micro-batch's token ids, labels and packing segments as tensors on the model's device.</summary>
internal static class MicroBatchTensors
{
    /// <summary>Input ids and labels, [batch, sequence].</summary>
    public static (Tensor Ids, Tensor Labels) Of(MicroBatch batch, Device device) =>
        (tensor(batch.InputIds, [batch.BatchSize, batch.SequenceLength], device: device),
            tensor(batch.Labels, [batch.BatchSize, batch.SequenceLength], device: device));

    /// <summary>
    /// The segments of rows that pack several examples apart (the model then restarts positions and confines
    /// attention); null for rows of one example.
    /// </summary>
    public static PackedSegments? Segments(MicroBatch batch, Device device) =>
        batch.SegmentIds is null ? null
        : PackedSegments.FromIds(batch.SegmentIds, batch.PositionIds!, batch.BatchSize, batch.SequenceLength, device);
}
