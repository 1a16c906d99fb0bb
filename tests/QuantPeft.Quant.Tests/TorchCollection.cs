namespace QuantPeft.Quant.Tests;

/// <summary>Tests that use TorchSharp run one at a time: some count live tensors or native heap bytes.</summary>
[CollectionDefinition("Torch", DisableParallelization = true)]
public sealed class TorchCollection;
