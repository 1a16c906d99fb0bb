using TorchSharp;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Adapters;

/// <summary>Shape-checked copying of saved adapter tensors into a layer's parameters.</summary>
internal static class AdapterTensorChecks
{
    public static void CopyInto(IReadOnlyDictionary<string, Tensor> source, IReadOnlyDictionary<string, Tensor> destination, string layer)
    {
        foreach (var (name, target) in destination)
        {
            if (!source.TryGetValue(name, out Tensor? value))
                throw new AdapterException($"{layer}: missing adapter tensor '{name}'");
            if (!value.shape.SequenceEqual(target.shape))
                throw new AdapterException($"{layer}: adapter tensor '{name}' has shape [{string.Join(", ", value.shape)}], expected [{string.Join(", ", target.shape)}]");
        }
        using var noGrad = torch.no_grad();
        foreach (var (name, target) in destination)
            target.copy_(source[name]);
    }
}
