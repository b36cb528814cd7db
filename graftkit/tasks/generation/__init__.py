"""What the two generative tasks (causal_lm, seq2seq) share: their config keys, reading
(prompt, completion) / text / chat rows, batched decoding, and the generation metrics."""
