using TorchSharp.Modules;
using static TorchSharp.torch;

namespace QuantPeft.Optimizers;

/// <summary>
/// A named set of parameters that share hyperparameters. The learning rate is the one field a
/// schedule changes during training; everything else is fixed by <see cref="Options"/>.
/// </summary>
public sealed class ParamGroup
{
    private double _lr;

    /// <summary>Creates a group; names must be unique within an optimizer (they key the state dict).</summary>
    /// <exception cref="OptimizerConfigException">An option is out of range or the group is empty.</exception>
    public ParamGroup(string name, IEnumerable<(string Name, Parameter Param)> parameters, ParamGroupOptions options)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(options);
        Name = name;
        options.Validate(name);
        Options = options;
        Parameters = [.. parameters];
        if (Parameters.Count == 0)
            throw new OptimizerConfigException($"parameter group '{name}' has no parameters");
        _lr = options.Lr;
    }

    /// <summary>The group's name, used in error messages and state-dict scalars.</summary>
    public string Name { get; }

    /// <summary>The parameters in the order they are updated.</summary>
    public IReadOnlyList<(string Name, Parameter Param)> Parameters { get; }

    /// <summary>The hyperparameters the group was built with.</summary>
    public ParamGroupOptions Options { get; }

    /// <summary>The current learning rate (a schedule may change it between steps).</summary>
    /// <exception cref="OptimizerConfigException">Negative or non-finite value.</exception>
    public double Lr
    {
        get => _lr;
        set
        {
            ParamGroupOptions.CheckLr(value, Name);
            _lr = value;
        }
    }
}
