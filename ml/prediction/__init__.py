"""Predictive models: churn risk and future value from point-in-time feature snapshots, their out-of-time
back-tests, registration and promotion in MLflow."""
