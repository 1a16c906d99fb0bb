using QuantPeft.Formats;

namespace QuantPeft.Trainers.Training;

/// <summary>A training option (schedule, run folder) is out of range; the message names the option and the value.</summary>
public sealed class TrainingOptionsException(string message) : QuantPeftException(message);
