using QuantPeft.Formats.HuggingFace;
using QuantPeft.Trainers.Model;

namespace QuantPeft.Trainers.Export;

/// <summary>
/// An adapter folder opened for <c>qpeft export</c>: validated on open (config and tensors), checked against a model's
/// architecture before any base weight is read, then folded into the dense base. One implementation per
/// <c>peft_type</c> (<see cref="ExportableAdapters.Open"/> picks it).
/// </summary>
internal interface IExportableAdapter : IDisposable
{
    /// <summary>The adapter folder.</summary>
    string Folder { get; }

    /// <summary>The method, as the report names it (e.g. <c>LoRA</c>, <c>VeRA</c>).</summary>
    string Method { get; }

    /// <summary>Checks every adapted module against <paramref name="spec"/>, from shapes alone.</summary>
    /// <exception cref="ExportException">A module is not a decoder projection of the model or has another shape; the message names the file.</exception>
    void CheckFits(ModelSpec spec, string modelConfigPath);

    /// <summary>Adds the adapter's update to the dense projections of <paramref name="model"/>; returns the number of modules merged.</summary>
    /// <exception cref="ExportException">A tensor cannot be read or does not fit; the message names the file and tensor.</exception>
    int MergeInto(CausalLm model);
}
