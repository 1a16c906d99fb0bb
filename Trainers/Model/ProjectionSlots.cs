using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Model;

/// <summary>
/// Swaps one registered submodule of a module for another under the same name, keeping the
/// registration order (and so the parameter order optimizers see) unchanged.
/// </summary>
internal static class ProjectionSlots
{
    /// <summary>Re-registers every child of <paramref name="owner"/>, substituting <paramref name="replacement"/> for <paramref name="name"/>.</summary>
    public static void Reregister(nn.Module owner, string name, nn.Module replacement, Action<string, nn.Module> register, Action clear)
    {
        var children = owner.named_children().ToList();
        clear();
        foreach (var (childName, child) in children)
            register(childName, childName == name ? replacement : child);
    }
}
