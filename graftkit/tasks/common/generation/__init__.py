"""What the two generative tasks (causal_lm, seq2seq) share: their config keys, reading
(prompt, completion) / text / chat rows, the task base, its capabilities and the generation metrics."""
