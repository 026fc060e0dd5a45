package ecr

// IAM action names of ECR that the registry and the ECR API authorize.
const (
	ActionGetAuthorizationToken       = "ecr:GetAuthorizationToken"
	ActionBatchCheckLayerAvailability = "ecr:BatchCheckLayerAvailability"
	ActionGetDownloadURLForLayer      = "ecr:GetDownloadUrlForLayer"
	ActionBatchGetImage               = "ecr:BatchGetImage"
	ActionInitiateLayerUpload         = "ecr:InitiateLayerUpload"
	ActionUploadLayerPart             = "ecr:UploadLayerPart"
	ActionCompleteLayerUpload         = "ecr:CompleteLayerUpload"
	ActionPutImage                    = "ecr:PutImage"
	ActionBatchDeleteImage            = "ecr:BatchDeleteImage"
	ActionListImages                  = "ecr:ListImages"
	ActionDescribeImages              = "ecr:DescribeImages"
	ActionDescribeRepositories        = "ecr:DescribeRepositories"
)
