using QuantPeft.Memory.Planning;
using QuantPeft.Memory.Planning.Methods;

namespace QuantPeft.Trainers.Recipes;

/// <summary>
/// What a method implies for the flags a user leaves out: the optimizer it needs and a learning rate at which it
/// learns, both read from the method's <see cref="MethodDescriptor"/>. An explicit flag always wins; a contradiction
/// between explicit flags stays an error (<see cref="Strategies.StrategyChecks"/>).
/// </summary>
public static class MethodDefaults
{
    /// <summary>The learning rate of LoRA and of every method that does not set its own.</summary>
    public const double BaseLearningRate = MethodRegistry.BaseLearningRate;

    /// <summary>
    /// The optimizer <paramref name="method"/> runs with when <c>--optimizer</c> is absent: GaLore and Natural GaLore
    /// are optimizers as much as methods, so they imply their own; everything else uses AdamW.
    /// </summary>
    public static OptimizerKind Optimizer(TrainingMethod method) => MethodRegistry.Of(method).ImpliedOptimizer;

    /// <summary>
    /// The peak learning rate <paramref name="method"/> runs with when <c>--lr</c> is absent (VeRA and OSoRA, which
    /// train only vectors, 3e-2; the others 3e-3; docs/strategies.md).
    /// </summary>
    public static double LearningRate(TrainingMethod method) => MethodRegistry.Of(method).DefaultLearningRate;
}
