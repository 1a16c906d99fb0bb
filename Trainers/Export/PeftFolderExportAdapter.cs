using QuantPeft.Formats.HuggingFace;
using QuantPeft.Formats.Peft;
using QuantPeft.Trainers.Model;

namespace QuantPeft.Trainers.Export;

/// <summary>
/// What every adapter merged from its own PEFT tensor file holds: the open file, the per-module tensor shapes its
/// <c>Open</c> checked, and the config they are checked against again once the model is known. The file stays open
/// until the merge has read each module's tensors, one module at a time.
/// </summary>
internal abstract class PeftFolderExportAdapter : IExportableAdapter
{
    protected PeftFolderExportAdapter(string folder, PeftAdapterConfig config, AdapterTensorFile file,
        SortedDictionary<string, Dictionary<string, long[]>> modules)
    {
        Folder = folder;
        ConfigPath = Path.Combine(folder, PeftAdapter.ConfigFileName);
        Config = config;
        TensorFile = file;
        Modules = modules;
    }

    public string Folder { get; }

    public abstract string Method { get; }

    /// <summary>The adapter's <c>adapter_config.json</c>, named in messages.</summary>
    protected string ConfigPath { get; }

    /// <summary>The parsed config.</summary>
    protected PeftAdapterConfig Config { get; }

    /// <summary>The adapter's tensor file.</summary>
    protected AdapterTensorFile TensorFile { get; }

    /// <summary>Each adapted module's tensors by local name, with their shapes.</summary>
    protected SortedDictionary<string, Dictionary<string, long[]>> Modules { get; }

    public abstract void CheckFits(ModelSpec spec, string modelConfigPath);

    public abstract int MergeInto(CausalLm model);

    public void Dispose() => TensorFile.Dispose();

    /// <summary>Opens the folder's tensor file and hands it to <paramref name="check"/>, closing it if the check throws.</summary>
    protected static T OpenChecked<T>(string folder, Func<AdapterTensorFile, T> check)
    {
        var file = AdapterTensorFile.Open(folder);
        try
        {
            return check(file);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }
}
