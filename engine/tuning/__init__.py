"""Fine-tuning: training sets from golden records, tuning jobs, evaluation and activation."""
