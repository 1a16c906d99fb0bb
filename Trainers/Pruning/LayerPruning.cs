namespace QuantPeft.Trainers.Pruning;

/// <summary>What one decoder block keeps: indices in the unpruned block, ascending, so kept units keep their order.</summary>
/// <param name="Layer">Block index.</param>
/// <param name="Pruned">False for the blocks LoRAM leaves whole (then every index is kept).</param>
/// <param name="KeptKvHeads">Kept key/value heads; each brings its group of query heads with it.</param>
/// <param name="KeptChannels">Kept MLP channels (rows of gate/up, columns of down).</param>
public sealed record LayerPruning(int Layer, bool Pruned, IReadOnlyList<int> KeptKvHeads, IReadOnlyList<int> KeptChannels);
