"""The Kubernetes backend: course profiles for KubeSpawner, z2jh Helm values, capacity planning and
the pre-lecture placeholder scaler. Everything here builds plain objects that are checked offline
(z2jh values schema, Kubernetes schema); only `scaler.apply_replicas` talks to a cluster."""
