namespace QuantPeft.Trainers.Recipes;

/// <summary>One optimizer step as reported to the progress display.</summary>
/// <param name="Step">1-based optimizer step.</param>
/// <param name="Loss">Mean loss per target token over the step's micro-batches.</param>
/// <param name="LearningRate">The learning rate used.</param>
/// <param name="TokensPerSecond">Input tokens per second of wall time for this step.</param>
/// <param name="RssBytes">Process resident set after the step.</param>
public sealed record StepReport(int Step, double Loss, double LearningRate, double TokensPerSecond, long RssBytes);
