"""Teach drf-spectacular the deployment-key scheme (imported from DeploymentsConfig.ready)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class DeploymentKeyScheme(OpenApiAuthenticationExtension):
    target_class = "apps.deployments.authentication.DeploymentKeyAuthentication"
    name = "deploymentKeyAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A deployment key (lepd_…): predict on its own deployment only.",
        }
